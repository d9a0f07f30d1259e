"""The cross-architecture transfer pipeline of the research (needs the ``pipeline`` extra).

One model (the teacher) trains a classifier on its HDC vectors; another model (the student), of a
different architecture, is aligned to it on shared anchor texts and uses that classifier.

* :mod:`.datasets` — offline SST-2 / AG News / text files, splits carved deterministically
* :mod:`.embed` — embedders (Hugging Face models, GGUF decoders, LSA and static controls) and the
  on-disk embedding cache
* :mod:`.align` — aligners between two embedding spaces (Procrustes, CCA, contrastive, vec2vec, ...)
* :mod:`.classify` — classifiers on HDC vectors (logistic regression, nearest prototype)
* :mod:`.transfer` — the protocol: one run, its metrics and their summaries
* :mod:`.experiments`, :mod:`.sentpairs`, :mod:`.plots` — the paper's tables and figures
"""
