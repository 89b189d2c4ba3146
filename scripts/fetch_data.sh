#!/usr/bin/env bash
# Puts the example data where calq looks for it ($CALQ_DATA, default ../shared) and checks it.
#  - If the data pack is already there (the usual case: ../shared beside the repository), every
#    file calq's examples and tests use is verified against its SHA-256 and nothing is downloaded.
#  - Otherwise, when online, the corpora and task files are fetched from their public sources
#    (pinned commits; see ../shared/data/MANIFEST.json for licences) into $CALQ_DATA and verified.
#    The Hugging Face-format stories260K model and the fixtures in models/tiny are built by the
#    data pack's own tools and are not downloadable as such: without the pack those examples and
#    the parity tests cannot run (the script says so).
# Usage: scripts/fetch_data.sh            (uses $CALQ_DATA or ../shared)
set -uo pipefail
cd "$(dirname "$0")/.."
dest="${CALQ_DATA:-../shared}"

sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

# path sha256 source ("zip:" = inside llama.cpp's copy of wikitext-2-raw-v1.zip)
files=$(cat <<'LIST'
data/wikitext-2-raw/wiki.test.raw 173c87a53759e0201f33e0ccf978e510c2042d7f2cb78229d9a50d79b9e7dd08 zip:https://huggingface.co/datasets/ggml-org/ci/resolve/main/wikitext-2-raw-v1.zip
data/wikitext-2-raw/wiki.valid.raw 4cd0f6876d07a413aa911261ff6d363c72d757d47f0fdd6015702014c89cb9c7 zip:https://huggingface.co/datasets/ggml-org/ci/resolve/main/wikitext-2-raw-v1.zip
data/c4/c4_sample.jsonl cdd5b754119131d2934e3e799a059a9d64f53a6aac9e7e2ef79b43120bb01a32 https://raw.githubusercontent.com/Diffusion-bachelor/diffusion-data-constraint-rare-events/3305ae85ae51f4882f291ff894d49946af655a11/data/c4_sample.jsonl
data/tinystories/tinystories_val.txt 5fc1fb0113df62b567fb271806cd645ce8d75f59c58ca0b764c03d3b6ff34ca6 https://raw.githubusercontent.com/yuninxia/moe-routing-bench/6877be50c1c389c73047d7f27104bee6a995efd6/data/tinystories_val.txt
data/tasks/arc_challenge.jsonl 1ae3aeedf1951d881cbd5c2e3a31e78a1993d251479afbe4cb413b6707244636 https://raw.githubusercontent.com/mosaicml/llm-foundry/ffcc56816674c8f9a9ef302b511a1f926efc5cf5/scripts/eval/local_data/world_knowledge/arc_challenge.jsonl
data/tasks/arc_easy.jsonl d2d12e59543acf9a5ef6079634a72b30215e36c2fd4236fff3bc855d287b87f5 https://raw.githubusercontent.com/mosaicml/llm-foundry/ffcc56816674c8f9a9ef302b511a1f926efc5cf5/scripts/eval/local_data/world_knowledge/arc_easy.jsonl
data/tasks/piqa.jsonl d2870e73aec5154df3faf259b7700876e11608eebdf69e9d6667435673dbe4e0 https://raw.githubusercontent.com/mosaicml/llm-foundry/ffcc56816674c8f9a9ef302b511a1f926efc5cf5/scripts/eval/local_data/commonsense_reasoning/piqa.jsonl
data/tasks/winogrande.jsonl ea1592526f3bfdd0948ed3acb1b4dfa3f83d23698917118688ee1df7f8d4b8d7 https://raw.githubusercontent.com/mosaicml/llm-foundry/ffcc56816674c8f9a9ef302b511a1f926efc5cf5/scripts/eval/local_data/language_understanding/winogrande.jsonl
data/tasks/lambada_openai.jsonl 411bfbe5b9054346b6a19299c0242670adbefb9162efd958593cbc0290b8c9dc https://raw.githubusercontent.com/mosaicml/llm-foundry/ffcc56816674c8f9a9ef302b511a1f926efc5cf5/scripts/eval/local_data/language_understanding/lambada_openai.jsonl
data/tasks/hellaswag_val_1000.jsonl 79b87117cffba9878961284f233797c5ebeba4193cb48a93eabc4a5a1156cc45 https://raw.githubusercontent.com/RubriksCube/rubriks_cube/cf806235148c20b035c43cd160d56de8b5e2cd70/data/hellaswag.jsonl
data/flores200/devtest/eng_Latn.devtest 612e9fbe87997617c0fa8fa8929654a4f49b728d96738112c2b86ef6a1d78d88 https://raw.githubusercontent.com/Helsinki-NLP/OPUS-MT-testsets/c04247a761e3814edbe616018f324d02f92ed68c/datasets/facebook/flores/flores200_dataset/devtest/eng_Latn.devtest
data/flores200/devtest/fra_Latn.devtest 82f5b000db419ef9254eea7857cce82943b361090942f17ed696e3dce2944f42 https://raw.githubusercontent.com/Helsinki-NLP/OPUS-MT-testsets/c04247a761e3814edbe616018f324d02f92ed68c/datasets/facebook/flores/flores200_dataset/devtest/fra_Latn.devtest
data/flores200/devtest/deu_Latn.devtest 9a1bfa90d153fedb7ff80047f4a63d493998888eddb056e8a28e24592f26e5f2 https://raw.githubusercontent.com/Helsinki-NLP/OPUS-MT-testsets/c04247a761e3814edbe616018f324d02f92ed68c/datasets/facebook/flores/flores200_dataset/devtest/deu_Latn.devtest
data/flores200/devtest/spa_Latn.devtest 40fcb836b49b0a461a14c00b8bce1f03113f8d2668132af424e74b2421d18ce9 https://raw.githubusercontent.com/Helsinki-NLP/OPUS-MT-testsets/c04247a761e3814edbe616018f324d02f92ed68c/datasets/facebook/flores/flores200_dataset/devtest/spa_Latn.devtest
data/flores200/devtest/zho_Hans.devtest b30158b1b76f7cee08530d8127a9769f4512597c7eefe97ae1ccf630d5b6e7fd https://raw.githubusercontent.com/Helsinki-NLP/OPUS-MT-testsets/c04247a761e3814edbe616018f324d02f92ed68c/datasets/facebook/flores/flores200_dataset/devtest/zho_Hans.devtest
data/flores200/devtest/jpn_Jpan.devtest 36b8e392ae9404a20e8448c731d16d957ac1b94588d97fb691128ae706b63606 https://raw.githubusercontent.com/Helsinki-NLP/OPUS-MT-testsets/c04247a761e3814edbe616018f324d02f92ed68c/datasets/facebook/flores/flores200_dataset/devtest/jpn_Jpan.devtest
data/flores200/devtest/arb_Arab.devtest ff09a52e63884e9b5bb1083780b58f37d3d14acb0c58c6b1f1f2544ecea12ff8 https://raw.githubusercontent.com/Helsinki-NLP/OPUS-MT-testsets/c04247a761e3814edbe616018f324d02f92ed68c/datasets/facebook/flores/flores200_dataset/devtest/arb_Arab.devtest
data/flores200/devtest/hin_Deva.devtest 5f5fd39acadca29fb044a0398e81869e48f37de979df086f2fad4a7d1fd2d015 https://raw.githubusercontent.com/Helsinki-NLP/OPUS-MT-testsets/c04247a761e3814edbe616018f324d02f92ed68c/datasets/facebook/flores/flores200_dataset/devtest/hin_Deva.devtest
data/flores200/devtest/rus_Cyrl.devtest cdc706ed862d1d35d8d67cfda0b396766646885434958b18291aa760ff1bb59e https://raw.githubusercontent.com/Helsinki-NLP/OPUS-MT-testsets/c04247a761e3814edbe616018f324d02f92ed68c/datasets/facebook/flores/flores200_dataset/devtest/rus_Cyrl.devtest
data/flores200/devtest/swh_Latn.devtest 834ce9e5f48893505f9d69dec24da2545be4323e841fb23440e36c62c5d61ee4 https://raw.githubusercontent.com/Helsinki-NLP/OPUS-MT-testsets/c04247a761e3814edbe616018f324d02f92ed68c/datasets/facebook/flores/flores200_dataset/devtest/swh_Latn.devtest
LIST
)

missing=0
while read -r rel sha url; do
  [ -z "$rel" ] && continue
  if sha_ok "$dest/$rel" "$sha"; then continue; fi
  mkdir -p "$dest/$(dirname "$rel")" 2>/dev/null || { echo "cannot write $dest; set CALQ_DATA"; exit 1; }
  case "$url" in
    zip:*)
      tmp=$(mktemp -d)
      if curl -fsSL --max-time 120 -o "$tmp/w.zip" "${url#zip:}" && (cd "$tmp" && unzip -q w.zip); then
        cp "$tmp"/wikitext-2-raw/"$(basename "$rel")" "$dest/$rel" 2>/dev/null
      fi
      rm -rf "$tmp" ;;
    *) curl -fsSL --max-time 120 -o "$dest/$rel" "$url" 2>/dev/null ;;
  esac
  if sha_ok "$dest/$rel" "$sha"; then echo "fetched  $rel"; else echo "MISSING  $rel (offline? source: $url)"; missing=1; fi
done <<< "$files"

for m in models/stories260K/model.safetensors models/tiny/llama2/model.safetensors; do
  [ -f "$dest/$m" ] || { echo "MISSING  $m: only in the calq data pack (../shared); parity tests need it"; missing=1; }
done
if [ "$missing" = 0 ]; then echo "data OK in $dest"; else echo "some data is missing in $dest"; exit 1; fi
