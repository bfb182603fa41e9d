"""Scale past one machine: embed sharded datasets into Parquet under torchrun (embed.py, parquet.py), and build
memory-mapped FAISS indexes (IVF-PQ, HNSW) over them, chosen from a target recall and a memory budget (ann.py)."""
