"""Serve a trained model over HTTP: ``GET /health``, ``GET /info``, ``POST /predict``.

``POST /predict`` takes ``{"rows": [[13 numbers], ...]}`` (the wine features, in the
order ``/info`` lists them) and answers ``{"labels": [...], "classes": [...]}``.
"""

from __future__ import annotations

import argparse
import json
import pickle
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CLASSES = ["class_0", "class_1", "class_2"]  # the wine data set's cultivars
MAX_BODY = 1 << 20


def load(path: Path) -> dict[str, Any]:
    # The model file is one this project's own training job wrote to its storage.
    with path.open("rb") as f:
        saved: dict[str, Any] = pickle.load(f)
    metrics_file = path.with_name("metrics.json")
    saved["metrics"] = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    saved["trial"] = path.parent.name
    return saved


def make_handler(saved: dict[str, Any]) -> type[BaseHTTPRequestHandler]:
    width = len(saved["features"])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/health":
                self.answer(HTTPStatus.OK, {"status": "ok"})
            elif self.path == "/info":
                self.answer(
                    HTTPStatus.OK,
                    {
                        "trial": saved["trial"],
                        "params": saved["params"],
                        "metrics": saved["metrics"],
                        "features": saved["features"],
                        "classes": CLASSES,
                    },
                )
            else:
                self.answer(HTTPStatus.NOT_FOUND, {"error": f"no route {self.path}"})

        def do_POST(self) -> None:
            if self.path != "/predict":
                self.answer(HTTPStatus.NOT_FOUND, {"error": f"no route {self.path}"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "body too large"})
                return
            try:
                rows = json.loads(self.rfile.read(length))["rows"]
                if not rows or any(len(row) != width for row in rows):
                    raise ValueError(f"rows must be non-empty lists of {width} numbers")
                rows = [[float(value) for value in row] for row in rows]
            except (ValueError, KeyError, TypeError) as e:
                self.answer(HTTPStatus.BAD_REQUEST, {"error": f"bad request: {e}"})
                return
            labels = [int(label) for label in saved["model"].predict(rows)]
            self.answer(HTTPStatus.OK, {"labels": labels, "classes": [CLASSES[i] for i in labels]})

        def answer(self, status: HTTPStatus, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            print(f"{self.address_string()} {format % args}", flush=True)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    saved = load(args.model)
    print(f"serving trial {saved['trial']} {saved['params']} on port {args.port}", flush=True)
    ThreadingHTTPServer(("0.0.0.0", args.port), make_handler(saved)).serve_forever()


if __name__ == "__main__":
    main()
