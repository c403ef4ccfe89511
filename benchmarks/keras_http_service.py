"""The baseline: Keras ``predict`` behind a plain HTTP service (like the reference project's BentoML
service). POST /predict with the encoded image as the body -> {"probabilities": [p0, p1]}.

Usage: python benchmarks/keras_http_service.py STATE_DIR HEAD_KERAS IMAGE_SIZE PORT
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build_app(state_dir: str, head_path: str, image_size: int):
    import numpy as np
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from emberwatch.ml.backbone import load_backbone
    from emberwatch.ml.head import compose, load_head_keras
    from emberwatch.ml.images import decode_image
    from emberwatch.ml.settings import MLSettings

    backbone = load_backbone(MLSettings(state_dir=Path(state_dir), image_size=image_size))
    model = compose(backbone.model, load_head_keras(head_path))
    model.predict(np.zeros((1, image_size, image_size, 3), np.float32), verbose=0)

    def run(body: bytes) -> list[float]:
        image = decode_image(body, image_size)[None].astype(np.float32)
        return [float(p) for p in model.predict(image, verbose=0)[0]]

    async def predict(request: Request) -> JSONResponse:
        body = await request.body()
        return JSONResponse({"probabilities": await run_in_threadpool(run, body)})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/health", health)])


def main() -> None:
    import uvicorn

    state_dir, head_path, size, port = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    uvicorn.run(build_app(state_dir, head_path, size), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
