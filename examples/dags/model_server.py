"""A small model and its HTTP server, standard library only, run as platform jobs.

    python3 model_server.py train --out model.json [--slope 2 --intercept 1 --points 200]
    python3 model_server.py serve --model model.json [--port 8080] [--warmup 2]

``train`` fits a line to noisy points by least squares. ``serve`` answers
``GET /health`` (503 while it warms up, then 200), ``GET /info`` and
``POST /predict`` with ``{"x": [numbers]}`` -> ``{"y": [numbers]}``, on 0.0.0.0 so the
platform's proxy can reach it.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def train(out: Path, slope: float, intercept: float, points: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    xs = [rng.uniform(-10, 10) for _ in range(points)]
    ys = [slope * x + intercept + rng.gauss(0, 0.5) for x in xs]
    mean_x, mean_y = sum(xs) / points, sum(ys) / points
    fitted = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mean_x) ** 2 for x in xs
    )
    model = {
        "kind": "linear",
        "slope": fitted,
        "intercept": mean_y - fitted * mean_x,
        "points": points,
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(model))
    print(f"trained on {points} points: y = {model['slope']:.3f} x + {model['intercept']:.3f}")
    return model


class ModelHandler(BaseHTTPRequestHandler):
    model: dict[str, Any] = {}
    ready_at = 0.0

    def do_GET(self) -> None:  # the name http.server calls
        if self.path == "/health":
            if time.monotonic() < self.ready_at:
                self.reply(HTTPStatus.SERVICE_UNAVAILABLE, {"status": "warming up"})
                return
            self.reply(HTTPStatus.OK, {"status": "ok"})
        elif self.path == "/info":
            self.reply(HTTPStatus.OK, dict(self.model))
        else:
            self.reply(HTTPStatus.NOT_FOUND, {"error": f"no such path: {self.path}"})

    def do_POST(self) -> None:
        if self.path != "/predict":
            self.reply(HTTPStatus.NOT_FOUND, {"error": f"no such path: {self.path}"})
            return
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            xs = [float(x) for x in body["x"]]
        except (ValueError, KeyError, TypeError) as e:
            self.reply(HTTPStatus.BAD_REQUEST, {"error": f'send {{"x": [numbers]}}: {e}'})
            return
        slope, intercept = self.model["slope"], self.model["intercept"]
        self.reply(HTTPStatus.OK, {"y": [slope * x + intercept for x in xs]})

    def reply(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        print(f"{self.address_string()} {format % args}", flush=True)


def serve(model_path: Path, port: int, warmup: float) -> None:
    ModelHandler.model = json.loads(model_path.read_text())
    ModelHandler.ready_at = time.monotonic() + warmup
    server = ThreadingHTTPServer(("0.0.0.0", port), ModelHandler)
    # The platform stops a job with SIGTERM: end the way Ctrl-C would, and exit 0.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    # The wall-clock time too, so whoever waits for it can tell how soon they noticed.
    print(
        f"serving {model_path} on 0.0.0.0:{port}, healthy from"
        f" {time.time() + warmup:.3f} (in {warmup:g} s)",
        flush=True,
    )
    server.serve_forever()
    print("stopped", flush=True)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fit = commands.add_parser("train")
    fit.add_argument("--out", type=Path, required=True)
    fit.add_argument("--slope", type=float, default=2.0)
    fit.add_argument("--intercept", type=float, default=1.0)
    fit.add_argument("--points", type=int, default=200)
    fit.add_argument("--seed", type=int, default=0)
    run = commands.add_parser("serve")
    run.add_argument("--model", type=Path, required=True)
    run.add_argument("--port", type=int, default=8080)
    run.add_argument("--warmup", type=float, default=0.0)
    args = parser.parse_args(argv)
    if args.command == "train":
        train(args.out, args.slope, args.intercept, args.points, args.seed)
    else:
        serve(args.model, args.port, args.warmup)


if __name__ == "__main__":
    main(sys.argv[1:])
