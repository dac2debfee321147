"""Pure ML: text-model loading and batched generation (and later fine-tuning and GANs).

Imports torch, transformers and tokenizers only; knows nothing of Redis, storage, Celery or Flask.
"""
