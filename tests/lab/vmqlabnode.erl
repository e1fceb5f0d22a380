%% A lab "VerneMQ pod": a real Erlang node named VerneMQ@<addr> that
%%  * connects to every expected member (net_kernel:connect_node) and keeps retrying,
%%  * listens on the cluster port (44053 by default) like listener.vmq.clustering,
%%  * serves GET /api/v1/cluster/show in VerneMQ 2.1's shape, computed from nodes().
%% Configuration comes from the file named by env VMQLAB_CONF (Erlang terms), never argv.
-module(vmqlabnode).
-export([start/0]).

start() ->
    {ok, Conf} = file:consult(os:getenv("VMQLAB_CONF")),
    Members = [list_to_atom(M) || M <- proplists:get_value(members, Conf)],
    HttpPort = proplists:get_value(http_port, Conf),
    ClusterPort = proplists:get_value(cluster_port, Conf),
    ApiKey = list_to_binary(proplists:get_value(api_key, Conf, "")),
    Ip = proplists:get_value(ip, Conf),
    {ok, Addr} = inet:parse_address(Ip),
    spawn(fun() -> listen_cluster(Addr, ClusterPort) end),
    spawn(fun() -> listen_http(Addr, HttpPort, Members, ApiKey) end),
    spawn(fun() -> connector(Members) end),
    ok.

connector(Members) ->
    [net_kernel:connect_node(M) || M <- Members, M =/= node(), not lists:member(M, nodes())],
    timer:sleep(1000),
    connector(Members).

listen_cluster(Addr, Port) ->
    {ok, L} = gen_tcp:listen(Port, [binary, {ip, Addr}, {reuseaddr, true}, {active, false}, {backlog, 1024}]),
    accept_cluster(L).

accept_cluster(L) ->
    {ok, S} = gen_tcp:accept(L),
    %% hold the socket briefly like a listener that waits for a peer, then close
    spawn(fun() -> timer:sleep(2000), gen_tcp:close(S) end),
    accept_cluster(L).

listen_http(Addr, Port, Members, Key) ->
    {ok, L} = gen_tcp:listen(Port, [binary, {ip, Addr}, {reuseaddr, true}, {active, false},
                                    {packet, http_bin}, {backlog, 1024}]),
    accept_http(L, Members, Key).

accept_http(L, Members, Key) ->
    {ok, S} = gen_tcp:accept(L),
    Pid = spawn(fun() -> receive go -> serve(S, Members, Key) end end),
    ok = gen_tcp:controlling_process(S, Pid),
    Pid ! go,
    accept_http(L, Members, Key).

serve(S, Members, Key) ->
    case read_request(S, undefined, []) of
        {ok, Path, Headers} ->
            reply(S, route(Path, Headers, Members, Key));
        error ->
            ok
    end,
    gen_tcp:close(S).

read_request(S, Path, Hs) ->
    case gen_tcp:recv(S, 0, 5000) of
        {ok, {http_request, _Method, {abs_path, P}, _}} -> read_request(S, P, Hs);
        {ok, {http_header, _, Name, _, Value}} -> read_request(S, Path, [{hname(Name), Value} | Hs]);
        {ok, http_eoh} when Path =/= undefined -> {ok, Path, Hs};
        _ -> error
    end.

hname(N) when is_atom(N) -> string:lowercase(atom_to_binary(N));
hname(N) -> string:lowercase(N).

authorized(_Hs, <<>>) -> true;
authorized(Hs, Key) ->
    XKey = proplists:get_value(<<"x-api-key">>, Hs),
    Basic = case proplists:get_value(<<"authorization">>, Hs) of
                <<"Basic ", B64/binary>> ->
                    try base64:decode(string:trim(B64)) of
                        Dec -> hd(binary:split(Dec, <<":">>))
                    catch _:_ -> undefined
                    end;
                _ -> undefined
            end,
    XKey =:= Key orelse Basic =:= Key.

route(Path, Hs, Members, Key) ->
    P = hd(binary:split(Path, <<"?">>)),
    case P of
        <<"/api/v1/cluster/show">> ->
            case authorized(Hs, Key) of
                true -> {200, [{<<"content-type">>, <<"application/json">>}], cluster_show(Members)};
                false -> {401, [{<<"www-authenticate">>, <<"Authorization realm=\"VerneMQ\"">>}], <<>>}
            end;
        <<"/health/ping">> -> {200, [{<<"content-type">>, <<"application/json">>}], <<"{\"status\":\"OK\"}">>};
        _ -> {404, [], <<>>}
    end.

cluster_show(Members) ->
    Up = [node() | nodes()],
    Extra = [N || N <- nodes(), not lists:member(N, Members)],
    Rows = [io_lib:format("{\"Node\":\"~s\",\"Running\":~s}", [N, lists:member(N, Up)])
            || N <- lists:usort(Members ++ Extra)],
    iolist_to_binary(["{\"table\":[", lists:join(",", Rows), "],\"type\":\"table\"}"]).

reply(S, {Code, Headers, Body}) ->
    Reason = case Code of 200 -> "OK"; 401 -> "Unauthorized"; _ -> "Not Found" end,
    Hs = [[N, <<": ">>, V, <<"\r\n">>] || {N, V} <- Headers],
    gen_tcp:send(S, [io_lib:format("HTTP/1.1 ~b ~s\r\n", [Code, Reason]),
                     io_lib:format("content-length: ~b\r\n", [byte_size(Body)]),
                     <<"server: vmqlab\r\nconnection: close\r\n">>, Hs, <<"\r\n">>, Body]).
