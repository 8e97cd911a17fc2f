"""In-process fan-out cost without sockets: N WebSocket connections on a fake transport, M emits.

Run: .venv/bin/python bench/micro/fanout_inprocess.py  (add FASTSIO_NO_EXTENSIONS=1 for pure mode).
It isolates the Python/Cython work of a broadcast from the kernel's copy and syscalls.
"""
import asyncio, time, sys, os
import fastsio
from fastsio.http import HttpConnection, Request, _H_WS
from fastsio._impl import fanout
from fastsio.engineio.websocket import WebSocketTransport
from fastsio.engineio.socket import EngineSocket

class FakeTransport:
    def __init__(self): self.n = 0; self.calls = 0
    def write(self, data): self.n += len(data); self.calls += 1
    def is_closing(self): return False
    def get_write_buffer_size(self): return 0
    def get_extra_info(self, k, d=None): return ("127.0.0.1", 1)
    def pause_reading(self): pass
    def resume_reading(self): pass

async def main(N=1000, M=200, reps=5):
    io = fastsio.Server()
    io.on("connection", lambda s: s.join("all"))
    engine = io.engine
    srv = engine.http_server()
    fq = srv.flush_queue()
    conns = []
    for i in range(N):
        conn = HttpConnection(srv); ft = FakeTransport(); conn.transport = ft; conn.loop = asyncio.get_running_loop(); conn._wbuf = fanout.WriteBuffer(conn, fq); conn.state = _H_WS
        t = WebSocketTransport(4, 1_000_000); t.attach(conn); conn.ws_handler = t
        req = Request("GET", "/socket.io/?EIO=4&transport=websocket", {"host": "x"}, b"", "127.0.0.1", False)
        sock = EngineSocket(engine, f"s{i:05d}", 4, t, req); engine.clients[sock.id] = sock; sock._open(); engine.emit("connection", sock)
        t.on_ws_message("40")
        conns.append(ft)
    await asyncio.sleep(0.05)
    payload = {"text": "x" * 60, "n": 12345, "ok": True}
    best = 1e9
    for r in range(reps):
        t0 = time.perf_counter(); c0 = time.process_time()
        for _ in range(M):
            io.to("all").emit("msg", payload)
        fq.flush()
        dt = time.process_time() - c0
        best = min(best, dt)
    print(f"{fastsio.IMPLEMENTATION}: {best/(N*M)*1e9:.0f} ns per delivered message (N={N}, M={M}), writes/conn per burst={conns[0].calls/reps:.0f}")
    if len(sys.argv) > 1:
        import cProfile, pstats
        pr = cProfile.Profile(); pr.enable()
        for _ in range(M): io.to("all").emit("msg", payload)
        fq.flush()
        pr.disable(); pstats.Stats(pr).sort_stats("tottime").print_stats(12)
asyncio.run(main())
