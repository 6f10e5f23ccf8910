"""External memory of a document: embeddings, a FAISS index and BM25, cached on disk."""
