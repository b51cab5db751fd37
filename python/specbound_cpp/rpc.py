"""ggml's RPC backend on the client side: the `rpc_servers` argument of Llama
and the reachability check that runs before ggml sees a worker.

ggml's RPC protocol has no authentication and no encryption: run workers
(`python -m specbound_cpp.rpc_server`) on loopback or a private network only.
"""

from __future__ import annotations

import socket
from typing import List, Optional, Sequence, Union

__all__ = ["RpcError", "parse_servers", "check_reachable"]


def _rpc_error():
    from . import _core

    return _core.RpcError


def __getattr__(name):  # RpcError lives in the extension; import it lazily
    if name == "RpcError":
        return _rpc_error()
    raise AttributeError(name)


def parse_servers(rpc_servers: Union[None, str, Sequence[str]]) -> List[str]:
    """"h1:p1,h2:p2" (as llama.cpp's --rpc and the earlier llama-cpp-python's
    rpc_servers) or a list of "host:port" -> the endpoints, checked."""
    if rpc_servers is None:
        return []
    if isinstance(rpc_servers, str):
        items = [s.strip() for s in rpc_servers.split(",")]
    elif isinstance(rpc_servers, (list, tuple)) and all(isinstance(s, str) for s in rpc_servers):
        items = [s.strip() for s in rpc_servers]
    else:
        raise ValueError(f"rpc_servers must be a string 'host:port,host:port' or a list of them, got {rpc_servers!r}")
    if not items or any(not s for s in items):
        raise ValueError(f"rpc_servers has an empty entry: {rpc_servers!r}")
    for s in items:
        host, _, port = s.rpartition(":")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"rpc_servers entry must be host:port with a port in [1, 65535], got {s!r}")
    if len(set(items)) != len(items):
        raise ValueError(f"rpc_servers names a worker twice: {rpc_servers!r}")
    return items


def check_reachable(servers: Sequence[str], timeout: float) -> None:
    """Raises RpcError naming the first worker that does not accept a
    connection within `timeout` seconds: ggml's own client would abort the
    process there (and waits for the system's connect timeout first)."""
    for s in servers:
        host, _, port = s.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                pass
        except OSError as e:
            raise _rpc_error()(
                f"RPC worker {s} is not reachable ({e.strerror or e}); start it with "
                f"`python -m specbound_cpp.rpc_server --host <address> --port {port}` on that machine"
            ) from None


def rpc_timeout_checked(value: Optional[float]) -> float:
    try:
        t = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"rpc_timeout must be a number of seconds > 0, got {value!r}") from None
    if not t > 0 or t == float("inf"):
        raise ValueError(f"rpc_timeout must be a number of seconds > 0, got {value!r}")
    return t
