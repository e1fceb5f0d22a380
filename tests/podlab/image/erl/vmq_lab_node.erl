%% The pod lab's VerneMQ node: a real Erlang/OTP node, started like the release starts VerneMQ
%% (`-args_file /vernemq/etc/vm.args`, so node name and cookie come from that file by Erlang's own rules).
%% It keeps what the chart's fate depends on, nothing of VerneMQ's own code:
%%  * cluster membership that survives restarts (kept in /vernemq/data, like VerneMQ's metadata): a node
%%    stays a member until it leaves, so a node gone without leaving shows as a member not running;
%%  * join (vmq_server_cmd:node_join/1, what the image's start script -evals), leave, node stop;
%%  * API keys added with `vmq-admin api-key add`, shared by every member;
%%  * HTTP on loopback for the stand-in in front of Mosquitto: /api/v1/cluster/show (with the API key),
%%    /_lab/members (who the stand-in's peers are).
%% Settings come from the file named by env VMQLAB_CONF (Erlang terms), written by /vernemq/bin/vernemq.
%% The HTTP plumbing and cluster/show's JSON are the lab node's (tests/lab/vmqlabnode.erl, compiled into the
%% image beside this file): one source for both labs.
-module(vmq_lab_node).
-behaviour(gen_server).
-export([start/0, join/1, cli/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-record(st, {members = #{} :: #{node() => {in | out, non_neg_integer()}},
             keys = [] :: [binary()],
             dir :: string(),
             conf :: list()}).

start() ->
    {ok, Conf} = file:consult(os:getenv("VMQLAB_CONF")),
    {ok, _} = gen_server:start({local, ?MODULE}, ?MODULE, Conf, []),
    ok.

join(Target) when is_atom(Target) ->
    spawn(fun() -> join_loop(Target, 120) end),
    ok.

join_loop(_Target, 0) ->
    io:format("vmq_lab: could not join ~s~n", [_Target]);
join_loop(Target, N) ->
    case try_join(Target) of
        ok -> io:format("vmq_lab: joined the cluster through ~s~n", [Target]);
        _ -> timer:sleep(1000), join_loop(Target, N - 1)
    end.

%% The remote call runs outside the gen_server, so two nodes joining each other never wait on each other.
try_join(Target) ->
    case net_kernel:connect_node(Target) of
        true ->
            {M0, K0} = gen_server:call(?MODULE, state),
            case catch gen_server:call({?MODULE, Target}, {join_req, node(), M0, K0}, 10000) of
                {ok, M, K} -> gen_server:call(?MODULE, {merge, M, K});
                Other -> {error, Other}
            end;
        _ -> {error, not_reachable}
    end.

cli(["cluster", "join", "discovery-node=" ++ Target]) ->
    case try_join(list_to_atom(Target)) of
        ok -> {0, "Done\n"};
        {error, E} -> {1, io_lib:format("Couldn't join cluster due to ~p~n", [E])}
    end;
cli(Args) -> gen_server:call(?MODULE, {cli, Args}, 120000).

%% ------------------------------------------------------------------ gen_server
init(Conf) ->
    Dir = filename:join(proplists:get_value(data_dir, Conf), "vmqlab"),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    St0 = case file:read_file(filename:join(Dir, "state")) of
              {ok, Bin} -> {M, K} = binary_to_term(Bin), #st{members = M, keys = K};
              _ -> #st{}
          end,
    Members = case maps:get(node(), St0#st.members, undefined) of
                  {in, _} -> St0#st.members;
                  {out, V} -> (St0#st.members)#{node() => {in, V + 1}};
                  undefined -> (St0#st.members)#{node() => {in, 1}}
              end,
    St = save(St0#st{members = Members, dir = Dir, conf = Conf}),
    {Ip, Port} = proplists:get_value(http, Conf),
    {ok, Addr} = inet:parse_address(Ip),
    L = vmqlabnode:http_listen(Addr, Port, 128),
    spawn(fun() -> vmqlabnode:http_accept(L, fun route/2, []) end),
    net_kernel:monitor_nodes(true),
    self() ! tick,
    {ok, St}.

handle_call(state, _From, St) ->
    {reply, {St#st.members, St#st.keys}, St};
handle_call({merge, M, K}, _From, St) ->
    St1 = save(merge(M, K, St)),
    gossip(St1),
    {reply, ok, St1};
handle_call({join_req, Node, M, K}, _From, St) ->
    St1 = merge(M, K, St),
    V = lists:max([Ver || {_, Ver} <- maps:values(St1#st.members)]),
    St2 = save(St1#st{members = (St1#st.members)#{Node => {in, V + 1}}}),
    gossip(St2),
    {reply, {ok, St2#st.members, St2#st.keys}, St2};
handle_call({gossip, M, K}, _From, St) ->
    {reply, ok, save(merge(M, K, St))};
handle_call({cli, Args}, _From, St) ->
    {Code, Text, St1} = command(Args, St),
    {reply, {Code, Text}, St1};
handle_call(members, _From, St) ->
    {reply, members(St), St};
handle_call(keys, _From, St) ->
    {reply, St#st.keys, St}.

handle_cast({gossip, M, K}, St) ->
    {noreply, save(merge(M, K, St))};
handle_cast(_, St) -> {noreply, St}.

handle_info(tick, St) ->
    Up = [node() | nodes()],
    [net_kernel:connect_node(N) || N <- members(St), not lists:member(N, Up)],
    gossip(St),
    erlang:send_after(1000, self(), tick),
    {noreply, St};
handle_info(_, St) -> {noreply, St}.

%% ------------------------------------------------------------------ membership
members(#st{members = M}) -> lists:sort([N || {N, {in, _}} <- maps:to_list(M)]).

merge(M, K, St = #st{members = Mine, keys = Keys}) ->
    Merged = maps:fold(fun(N, {S, V}, Acc) ->
                               case maps:get(N, Acc, undefined) of
                                   undefined -> Acc#{N => {S, V}};
                                   {_, V0} when V > V0 -> Acc#{N => {S, V}};
                                   {in, V} when S =:= out -> Acc#{N => {out, V}};
                                   _ -> Acc
                               end
                       end, Mine, M),
    St#st{members = Merged, keys = lists:usort(Keys ++ K)}.

mark_out(Node, St = #st{members = M}) ->
    V = lists:max([Ver || {_, Ver} <- maps:values(M)]),
    St#st{members = M#{Node => {out, V + 1}}}.

gossip(St) ->
    [gen_server:cast({?MODULE, N}, {gossip, St#st.members, St#st.keys})
     || N <- members(St), N =/= node(), lists:member(N, nodes())],
    ok.

save(St = #st{dir = undefined}) -> St;
save(St = #st{dir = Dir, members = M, keys = K}) ->
    Tmp = filename:join(Dir, "state.tmp"),
    ok = file:write_file(Tmp, term_to_binary({M, K})),
    ok = file:rename(Tmp, filename:join(Dir, "state")),
    KeyFile = filename:join(Dir, "api-keys"),
    KTmp = KeyFile ++ ".tmp",
    ok = file:write_file(KTmp, [[Key, $\n] || Key <- K]),
    ok = file:change_mode(KTmp, 8#600),
    ok = file:rename(KTmp, KeyFile),
    St.

%% ------------------------------------------------------------------ vmq-admin commands
command(["cluster", "show"], St) ->
    Up = [node() | nodes()],
    Rows = [[atom_to_list(N), atom_to_list(lists:member(N, Up))] || N <- members(St)],
    {0, table(["Node", "Running"], Rows), St};
command(["cluster", "leave", "node=" ++ Name | Flags], St) ->
    Node = list_to_atom(Name),
    Kill = lists:member("-k", Flags) orelse lists:member("--kill_sessions", Flags),
    case lists:member(Node, members(St)) of
        false ->
            {1, io_lib:format("Node ~s is not a member of the cluster~n", [Name]), St};
        true when Node =:= node() ->
            self_leave(Kill, St);
        true ->
            case lists:member(Node, nodes()) of
                true ->
                    case catch rpc:call(Node, ?MODULE, cli, [["cluster", "leave", "node=" ++ Name | Flags]], 120000) of
                        {Code, Text} when is_integer(Code) -> {Code, Text, St};
                        Other -> {1, io_lib:format("leave failed on ~s: ~p~n", [Name, Other]), St}
                    end;
                false ->
                    %% a member no process backs any more: remove it from the cluster state
                    St1 = save(mark_out(Node, St)),
                    gossip(St1),
                    {0, "Done\n", St1}
            end
    end;
command(["node", "stop"], St) ->
    spawn(fun() -> timer:sleep(200), init:stop() end),
    {0, "ok\n", St};
command(["api-key", "add" | KV], St) ->
    case [K || "key=" ++ K <- KV] of
        [Key] when Key =/= "" ->
            St1 = save(St#st{keys = lists:usort([list_to_binary(Key) | St#st.keys])}),
            gossip(St1),
            {0, "Done\n", St1};
        _ -> {1, "Invalid key\n", St}
    end;
command(Args, St) ->
    {1, io_lib:format("Invalid command ~p (the lab's vmq-admin knows cluster show/join/leave, node stop, "
                      "api-key add)~n", [string:join(Args, " ")]), St}.

%% Leave the cluster: stop taking MQTT clients, hand the persistent sessions to a running member (the stand-in
%% does it), mark this node out everywhere, then stop the node (as VerneMQ does after a leave).
self_leave(Kill, St) ->
    Others = [N || N <- members(St), N =/= node(), lists:member(N, nodes())],
    Handover = case Others of
                   [] -> {ok, <<"no running member to take the queues">>};
                   [To | _] -> standin_handover(To, Kill, St)
               end,
    case Handover of
        {ok, Info} ->
            St1 = save(mark_out(node(), St)),
            gossip(St1),
            spawn(fun() -> timer:sleep(500), init:stop() end),
            {0, io_lib:format("~s~nDone~n", [Info]), St1};
        {error, E} ->
            {1, io_lib:format("leave failed: ~s~n", [E]), St}
    end.

standin_handover(To, Kill, #st{conf = Conf}) ->
    {Ip, Port} = proplists:get_value(standin_cluster, Conf),
    [_, ToHost] = string:split(atom_to_list(To), "@"),
    Path = io_lib:format("/_standin/handover?to=~s:~b&kill=~s", [ToHost, Port, Kill]),
    case http_get(Ip, Port, lists:flatten(Path)) of
        {ok, 200, Body} -> {ok, Body};
        {ok, Code, Body} -> {error, io_lib:format("stand-in answered ~b: ~s", [Code, Body])};
        {error, E} -> {error, io_lib:format("stand-in not reachable: ~p", [E])}
    end.

http_get(Ip, Port, Path) ->
    {ok, Addr} = inet:parse_address(Ip),
    case gen_tcp:connect(Addr, Port, [binary, {active, false}], 5000) of
        {ok, S} ->
            ok = gen_tcp:send(S, ["GET ", Path, " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"]),
            R = recv_all(S, []),
            gen_tcp:close(S),
            case binary:split(R, <<"\r\n\r\n">>) of
                [<<"HTTP/1.1 ", C:3/binary, _/binary>>, Body] -> {ok, binary_to_integer(C), Body};
                _ -> {error, bad_answer}
            end;
        E -> E
    end.

recv_all(S, Acc) ->
    case gen_tcp:recv(S, 0, 60000) of
        {ok, B} -> recv_all(S, [Acc, B]);
        _ -> iolist_to_binary(Acc)
    end.

%% clique's table: header and cells centred, | separators, + borders.
table(Header, Rows) ->
    Widths = [lists:max([length(H) | [length(lists:nth(I, R)) || R <- Rows]]) + 2
              || {I, H} <- lists:zip(lists:seq(1, length(Header)), Header)],
    Line = ["+", [[lists:duplicate(W, $-), "+"] || W <- Widths], "\n"],
    Fmt = fun(Cells) -> ["|", [[centre(C, W), "|"] || {C, W} <- lists:zip(Cells, Widths)], "\n"] end,
    lists:flatten([Line, Fmt(Header), Line, [Fmt(R) || R <- Rows], Line]).

centre(S, W) ->
    Pad = W - length(S),
    L = Pad div 2,
    [lists:duplicate(L, $\s), S, lists:duplicate(Pad - L, $\s)].

%% ------------------------------------------------------------------ HTTP (loopback, for the stand-in)
authorized(Hs) ->
    Keys = gen_server:call(?MODULE, keys),
    lists:any(fun(K) -> lists:member(K, Keys) end, vmqlabnode:presented_keys(Hs)).

route(Path, Hs) ->
    Json = [{<<"content-type">>, <<"application/json">>}],
    case hd(binary:split(Path, <<"?">>)) of
        <<"/api/v1/cluster/show">> ->
            case authorized(Hs) of
                true -> {200, Json, vmqlabnode:cluster_show_json(gen_server:call(?MODULE, members))};
                false -> {401, [{<<"www-authenticate">>, <<"Authorization realm=\"VerneMQ\"">>}], <<>>}
            end;
        <<"/_lab/members">> ->
            Up = [node() | nodes()],
            Rows = [io_lib:format("{\"node\":\"~s\",\"host\":\"~s\",\"running\":~s}",
                                  [N, lists:nth(2, string:split(atom_to_list(N), "@")), lists:member(N, Up)])
                    || N <- gen_server:call(?MODULE, members), N =/= node()],
            {200, Json, iolist_to_binary(["[", lists:join(",", Rows), "]"])};
        <<"/health/ping">> -> {200, Json, <<"{\"status\":\"OK\"}">>};
        _ -> {404, [], <<>>}
    end.
