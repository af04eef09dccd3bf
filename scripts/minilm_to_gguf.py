"""Converts the sentence-transformers all-MiniLM-L6-v2 checkpoint (safetensors + tokenizer.json) to a
GGUF file that llama-server serves with `--embeddings --pooling mean`, without torch.

Usage: minilm_to_gguf.py MODEL_DIR OUT.gguf [f16|f32]     (needs gguf==0.19.0, numpy, safetensors)

It writes what llama.cpp's own converter writes for this model (BERT architecture, the WordPiece
vocabulary with `##` pieces unprefixed and other tokens `▁`-prefixed, lowercase normaliser, mean
pooling); see ../shared/reference/real-backends.md §2.2 for the checked recipe."""

import json
import sys
from pathlib import Path

import gguf
import numpy as np
from safetensors.numpy import load_file


def main(model_dir, out_path, mode="f16"):
    model_dir = Path(model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    tokenizer = json.loads((model_dir / "tokenizer.json").read_text())
    pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    assert pooling.get("pooling_mode_mean_tokens"), "all-MiniLM-L6-v2 uses mean pooling"
    tensors = load_file(str(model_dir / "model.safetensors"))

    arch = gguf.MODEL_ARCH.BERT
    writer = gguf.GGUFWriter(out_path, gguf.MODEL_ARCH_NAMES[arch])
    n_layer = config["num_hidden_layers"]
    writer.add_name("all-MiniLM-L6-v2")
    writer.add_block_count(n_layer)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_layer_norm_eps(config["layer_norm_eps"])
    writer.add_causal_attention(False)
    writer.add_file_type(
        gguf.LlamaFileType.MOSTLY_F16 if mode == "f16" else gguf.LlamaFileType.ALL_F32
    )
    writer.add_pooling_type(gguf.PoolingType.MEAN)

    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("jina-v2-en")
    writer.add_token_type_count(config["type_vocab_size"])
    lowercase = (tokenizer.get("normalizer") or {}).get("lowercase", True)
    # llama.cpp defaults this to false: an uncased model would mis-tokenize capitals.
    writer.add_bool("tokenizer.ggml.normalizer.lowercase", bool(lowercase))
    vocab_size = config["vocab_size"]
    special = {t["content"] for t in tokenizer.get("added_tokens", []) if t.get("special")}
    by_id = {i: t for t, i in tokenizer["model"]["vocab"].items()}
    tokens, types = [], []
    for i in range(vocab_size):
        token = by_id.get(i)
        if token is None:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif token in special:
            tokens.append(token)
            types.append(gguf.TokenType.CONTROL)
        elif token.startswith("##"):
            tokens.append(token[2:])
            types.append(gguf.TokenType.NORMAL)
        else:
            tokens.append("\u2581" + token)
            types.append(gguf.TokenType.NORMAL)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    gguf.SpecialVocab(model_dir, n_vocab=len(tokens)).add_to_gguf(writer)

    names = gguf.get_tensor_name_map(arch, n_layer)
    skipped = {"embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias"}
    for name, data in tensors.items():
        name = name[len("bert."):] if name.startswith("bert.") else name
        if name in skipped or name.startswith("cls."):
            continue
        mapped = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if mapped is None:
            raise SystemExit(f"minilm_to_gguf: no GGUF name for tensor {name}")
        data = data.astype(np.float32)
        keep_f32 = (
            data.ndim == 1
            or mapped.endswith("_norm.weight")
            or mapped in ("position_embd.weight", "token_types.weight")
        )
        if mode == "f16" and not keep_f32:
            data = data.astype(np.float16)
        writer.add_tensor(mapped, data)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
