"""The local language model engine: windowed recurrent segment attention over Hugging Face models.

Modules, lowest layer first:
  cache_config   sizes of the bounded memory, and the sizes each task reads with (no torch import)
  rotary         RoPE frequencies and the re-rotation of cached keys
  segment_cache  the bounded [sinks | window | segment] key/value cache
  reader         feeds long token sequences through a model in segments
  generation     decoding: greedy/sampled, stop conditions, left-padded batches
  local          `LocalModel`, a tokenizer + model behind the `longdoc.model` protocol
  presets        packaged models by name (no torch import)
  loading        preset assembly, sha256 check, GGUF -> safetensors cache, devices

What the tasks talk to (the `Model` protocol, the HTTP client for servers, the choice of model)
lives in `longdoc.model`, which never imports torch. This package file imports nothing heavy
either: torch and transformers load with the modules that need them.
"""
