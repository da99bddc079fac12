"""Item content for ID-free models: text and feature vectors aligned to RecBole's item ids
(:mod:`~recbole_compress.content.dataset`), and text vectors from the offline sentence
encoder with an on-disk cache (:mod:`~recbole_compress.content.text`)."""
