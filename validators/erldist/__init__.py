"""Erlang distribution from Python (stdlib only): EPMD client and the version-6 handshake.

* :mod:`.wire`      pure encoders/decoders of EPMD and handshake messages (fuzzed in tests)
* :mod:`.epmd`      NAMES and PORT_PLEASE2 over TCP, with a timeout on every call
* :mod:`.handshake` connect as a hidden node, close right after the challenge acknowledgement
* :mod:`.probe`     one source's probes against many targets; ``python -m validators.erldist.probe``
                    reads a JSON job on stdin and prints one JSON line per observation
"""
