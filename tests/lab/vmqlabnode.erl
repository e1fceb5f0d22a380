%% A lab "VerneMQ pod": a real Erlang node named VerneMQ@<addr> that
%%  * connects to every expected member (net_kernel:connect_node) and keeps retrying,
%%  * listens on the cluster port (44053 by default) like listener.vmq.clustering,
%%  * serves GET /api/v1/cluster/show in VerneMQ 2.1's shape, computed from nodes().
%% Configuration comes from the file named by env VMQLAB_CONF (Erlang terms), never argv.
%% Its HTTP part (listen, accept, parse, reply, the API key a request presents, cluster/show's JSON) is also
%% the pod lab's: its image compiles this file beside tests/podlab/image/erl/vmq_lab_node.erl, which calls it.
-module(vmqlabnode).
-export([start/0]).
-export([http_listen/3, http_accept/3, presented_keys/1, cluster_show_json/1]).

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
    L = http_listen(Addr, Port, 1024),
    http_accept(L, fun(Path, Hs) -> route(Path, Hs, Members, Key) end, [{<<"server">>, <<"vmqlab">>}]).

authorized(_Hs, <<>>) -> true;
authorized(Hs, Key) -> lists:member(Key, presented_keys(Hs)).

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

%% the members and any other connected node
cluster_show(Members) ->
    Extra = [N || N <- nodes(), not lists:member(N, Members)],
    cluster_show_json(lists:usort(Members ++ Extra)).

%% ------------------------------------------------------------------ HTTP, shared with the pod lab's node
http_listen(Addr, Port, Backlog) ->
    {ok, L} = gen_tcp:listen(Port, [binary, {ip, Addr}, {reuseaddr, true}, {active, false},
                                    {packet, http_bin}, {backlog, Backlog}]),
    L.

%% Route(Path, Headers) -> {Code, Headers, Body}; Fixed: headers of every answer (after content-length).
http_accept(L, Route, Fixed) ->
    {ok, S} = gen_tcp:accept(L),
    Pid = spawn(fun() -> receive go -> serve(S, Route, Fixed) end end),
    ok = gen_tcp:controlling_process(S, Pid),
    Pid ! go,
    http_accept(L, Route, Fixed).

serve(S, Route, Fixed) ->
    case read_request(S, undefined, []) of
        {ok, Path, Headers} ->
            reply(S, Route(Path, Headers), Fixed);
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

%% The API keys a request presents: x-api-key, and the user of Basic auth (as VerneMQ takes it).
presented_keys(Hs) ->
    Basic = case proplists:get_value(<<"authorization">>, Hs) of
                <<"Basic ", B64/binary>> ->
                    try hd(binary:split(base64:decode(string:trim(B64)), <<":">>)) catch _:_ -> undefined end;
                _ -> undefined
            end,
    [K || K <- [proplists:get_value(<<"x-api-key">>, Hs), Basic], is_binary(K)].

%% /api/v1/cluster/show in VerneMQ 2.1's shape: these nodes, running when connected (or this node).
cluster_show_json(Nodes) ->
    Up = [node() | nodes()],
    Rows = [io_lib:format("{\"Node\":\"~s\",\"Running\":~s}", [N, lists:member(N, Up)]) || N <- Nodes],
    iolist_to_binary(["{\"table\":[", lists:join(",", Rows), "],\"type\":\"table\"}"]).

reply(S, {Code, Headers, Body}, Fixed) ->
    Reason = case Code of 200 -> "OK"; 401 -> "Unauthorized"; _ -> "Not Found" end,
    Hs = [[N, <<": ">>, V, <<"\r\n">>] || {N, V} <- Headers],
    Fs = [[N, <<": ">>, V, <<"\r\n">>] || {N, V} <- Fixed],
    gen_tcp:send(S, [io_lib:format("HTTP/1.1 ~b ~s\r\n", [Code, Reason]),
                     io_lib:format("content-length: ~b\r\n", [byte_size(Body)]),
                     Fs, <<"connection: close\r\n">>, Hs, <<"\r\n">>, Body]).
