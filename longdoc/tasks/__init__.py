"""The jobs users come for, on top of ingest, chunking, memory and the `Model` protocol.

  prompts    template files with declared variables, document text fenced
  results    finished steps on disk, so interrupted runs resume
  steps      cached-or-batched execution of many model calls
  cleanup    repeated and cut-off sentences removed from replies
  language   language detection and names
  summarize  hierarchical map-reduce summaries
  ask        retrieval-grounded answers with citations
  translate  paragraph-aligned translation with context and glossary
  glossary   recurring terms of a document and their one-off translations
  paragraphs the paragraphs, pieces and runs a translation keeps to
"""
