%% The lab's vmq-admin: like the real one it runs as a hidden Erlang node that talks to the local VerneMQ node.
%% The node name comes from the `-name` line of /vernemq/etc/vm.args and the cookie from its `-setcookie`
%% line, else from `distributed_cookie` in vernemq.conf (as the release's env.sh picks them). The real tool
%% passes that cookie to its escript on the command line; the lab reads it here from the files instead. Distribution is started by `erl -name` before this runs,
%% with no cookie on the command line, so Erlang itself reads (or creates) $HOME/.erlang.cookie first: with
%% HOME on a read-only filesystem and no cookie file there, the hidden node dies before any command runs,
%% as the real vmq-admin does.
-module(vmq_lab_admin).
-export([main/0]).

main() ->
    Args = init:get_plain_arguments(),
    Etc = os:getenv("VMQ_ETC", "/vernemq/etc"),
    Lines = lines(filename:join(Etc, "vm.args")),
    [Target | _] = [list_to_atom(string:trim(N)) || "-name" ++ N <- Lines] ++ [undefined],
    %% as the release's env.sh: -setcookie from vm.args, else distributed_cookie from vernemq.conf, else refuse
    Cookie = case [string:trim(C) || "-setcookie" ++ C <- Lines] of
                 [C | _] -> C;
                 [] -> case [string:trim(string:trim(V), leading, "= \t")
                             || "distributed_cookie" ++ V <- lines(filename:join(Etc, "vernemq.conf"))] of
                           [] -> undefined;
                           Vs -> lists:last(Vs)
                       end
             end,
    case Cookie of
        undefined ->
            io:format(standard_error, "vm.args needs to have a -setcookie parameter.~n", []),
            erlang:halt(1);
        _ -> erlang:set_cookie(Target, list_to_atom(Cookie))
    end,
    Code = case net_kernel:connect_node(Target) of
               true ->
                   case catch rpc:call(Target, vmq_lab_node, cli, [Args], 150000) of
                       {C1, Text} when is_integer(C1) -> io:put_chars(Text), C1;
                       Other -> io:format("Error: ~p~n", [Other]), 1
                   end;
               _ ->
                   io:format("Node ~s not responding to pings.~n", [Target]),
                   1
           end,
    erlang:halt(Code).

lines(File) ->
    case file:read_file(File) of
        {ok, Bin} -> [string:trim(L, leading) || L <- string:split(binary_to_list(Bin), "\n", all)];
        _ -> []
    end.
