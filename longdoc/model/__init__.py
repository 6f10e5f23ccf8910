"""What the tasks talk to: the `Model` protocol, and the models behind it that need no torch.

Modules:
  protocol   the `Model` protocol and `GenerationOptions`
  chat_api   one chat-completions request to an OpenAI-compatible server, with retries
  server     `OpenAIModel`: a served model behind the protocol, prompts as concurrent requests
  spec       which model to use (a local preset or a server) and the one place a model is made

Nothing here imports torch; the local engine (`longdoc.engine`) is imported only to load one.
"""
