%% The entry point the official image's start script writes into vm.args for a join:
%%   -eval "vmq_server_cmd:node_join('VerneMQ@<peer>')"
%% Here it hands the join to the lab node (tests/podlab/image/erl/vmq_lab_node.erl), which retries until the
%% peer answers. Only the module and function name are VerneMQ's; the code is the lab's own.
-module(vmq_server_cmd).
-export([node_join/1]).

node_join(Target) ->
    vmq_lab_node:join(Target).
