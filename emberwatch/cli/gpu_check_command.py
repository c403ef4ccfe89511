"""``scripts/gpu-check``'s entry: ``emberwatch.operations.check_gpu`` on tiles drawn by the Mapbox
simulator's renderer (half at fires, half 10-50 km away). The CLI is where the dev tools are wired,
so the simulator is imported here and not by the check itself."""

from __future__ import annotations

import argparse

from emberwatch.operations.check_gpu import run_check


def main(argv: list[str] | None = None) -> None:
    from simulators.mapbox.sample_tiles import sample_tiles

    parser = argparse.ArgumentParser(description="Prove the GPU paths on a machine with an NVIDIA GPU; "
                                                 "say so where there is none.")
    parser.add_argument("--images", type=int, default=96, help="simulated tiles (half fire, half fire-free)")
    parser.add_argument("--size", type=int, default=224, help="backbone input size (px)")
    parser.add_argument("--seconds", type=float, default=5.0, help="timing window per measurement")
    args = parser.parse_args(argv)
    raise SystemExit(run_check(sample_tiles, n=args.images, size=args.size, seconds=args.seconds))


if __name__ == "__main__":
    main()
