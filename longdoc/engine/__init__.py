"""The local language model engine: windowed recurrent segment attention over Hugging Face models.

Modules, lowest layer first:
  rotary         RoPE frequencies and the re-rotation of cached keys
  segment_cache  the bounded [sinks | window | segment] key/value cache
  reader         feeds long token sequences through a model in segments
  generation     decoding: greedy/sampled, stop conditions, left-padded batches
  model          the `Model` protocol and `GenerationOptions` (no torch import)
  local          `LocalModel`, a tokenizer + model behind the protocol
  presets        packaged models by name (no torch import)
  loading        preset assembly, sha256 check, GGUF -> safetensors cache, devices
  chat_api       one chat-completions request to an OpenAI-compatible server, with retries
  remote         `OpenAIModel`: a served model behind the protocol, prompts as concurrent requests
  backends       the one place a model is made: local engine or server, from settings

This package file imports nothing heavy, so `import longdoc.engine.model` stays cheap; torch and
transformers load with the modules that need them.
"""
