"""A bounded, per-process LRU cache of loaded models, so a worker loads each model once."""

from __future__ import annotations

import gc
import threading
from collections import OrderedDict
from typing import Callable, Hashable


class ModelCache:
    def __init__(self, max_items: int, on_evict: Callable[[object], None] | None = None,
                 on_lookup: Callable[[bool], None] | None = None):
        self.max_items = max_items
        self.on_evict = on_evict
        self.on_lookup = on_lookup  # told hit (True) or miss (False), for the metrics
        self._items: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0

    def get(self, key: Hashable, load: Callable[[], object]) -> object:
        with self._lock:
            hit = key in self._items
            if self.on_lookup:
                self.on_lookup(hit)
            if hit:
                self._items.move_to_end(key)
                return self._items[key]
            value = load()
            self.loads += 1
            self._items[key] = value
            while len(self._items) > self.max_items:
                _, old = self._items.popitem(last=False)
                if self.on_evict:
                    self.on_evict(old)
                del old
                gc.collect()  # free the evicted weights now, not at some later collection
            return value

    def __len__(self) -> int:
        return len(self._items)
