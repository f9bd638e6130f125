"""Evaluation: metrics, attribute checks and model scoring.

- ``evaluation.reconstruction``: vocoder / VAE round-trip quality;
- ``evaluation.family_classifier``, ``evaluation.family_training``, ``evaluation.judge``: instrument-family
  classifier (and its embedding), its training, and training it on the demo dataset's real renders;
- ``evaluation.tempo``: tempo estimation and requested-vs-estimated agreement; ``evaluation.tempo_report``
  the same over a demo dataset's renders;
- ``evaluation.frechet``: Fréchet distance between embedding sets;
- ``evaluation.demo_records``: demo-dataset records and audio for evaluation;
- ``evaluation.benchmark``: a model scored on held-out demo prompts (``benchmarks/bench_bundled.py``);
- set metrics of generated clips against a reference set (``fluxmusic evaluate GENERATED --reference
  REF``): ``evaluation.compare`` (:func:`evaluate_sets`), ``evaluation.set_metrics`` (the metrics, one
  shape), ``evaluation.scores`` (FAD-inf, contributions, KL, CLAP score), ``evaluation.embedders``,
  ``evaluation.backends``, ``evaluation.clap``, ``evaluation.encodec``, ``evaluation.notes`` (embedding
  backends; basic-pitch note statistics), ``evaluation.embedding_cache``, ``evaluation.audio_sets``.

Command line: ``fluxmusic evaluate GENERATED --reference REF ...`` and ``fluxmusic evaluate
{tempo,judge,reconstruction} --help`` (:mod:`fluxmusic.cli.evaluate`).
The names below load their module on first use.
"""

from fluxmusic.lazy import lazy_exports

_LAZY = {
    "AudioSet": "fluxmusic.evaluation.audio_sets",
    "read_set": "fluxmusic.evaluation.audio_sets",
    "EMBEDDINGS": "fluxmusic.evaluation.backends",
    "build_embedder": "fluxmusic.evaluation.backends",
    "ClapEmbedder": "fluxmusic.evaluation.clap",
    "EvaluationResult": "fluxmusic.evaluation.compare",
    "evaluate_sets": "fluxmusic.evaluation.compare",
    "EmbeddingCache": "fluxmusic.evaluation.embedding_cache",
    "Embedder": "fluxmusic.evaluation.embedders",
    "FamilyEmbedder": "fluxmusic.evaluation.embedders",
    "EncodecEmbedder": "fluxmusic.evaluation.encodec",
    "NoteStatsEmbedder": "fluxmusic.evaluation.notes",
    "note_statistics": "fluxmusic.evaluation.notes",
    "FadInf": "fluxmusic.evaluation.scores",
    "clap_score": "fluxmusic.evaluation.scores",
    "fad_contributions": "fluxmusic.evaluation.scores",
    "fad_inf": "fluxmusic.evaluation.scores",
    "kl_divergence": "fluxmusic.evaluation.scores",
    "METRICS": "fluxmusic.evaluation.set_metrics",
    "GenerationSettings": "fluxmusic.evaluation.benchmark",
    "HeldOutPrompts": "fluxmusic.evaluation.benchmark",
    "Scorer": "fluxmusic.evaluation.benchmark",
    "held_out_prompts": "fluxmusic.evaluation.benchmark",
    "load_waveforms": "fluxmusic.evaluation.demo_records",
    "read_records": "fluxmusic.evaluation.demo_records",
    "stratified_pick": "fluxmusic.evaluation.demo_records",
    "FamilyClassifier": "fluxmusic.evaluation.family_classifier",
    "FamilyClassifierConfig": "fluxmusic.evaluation.family_classifier",
    "accuracy_report": "fluxmusic.evaluation.family_classifier",
    "TrainSettings": "fluxmusic.evaluation.family_training",
    "fit_family_classifier": "fluxmusic.evaluation.family_training",
    "train_family_classifier": "fluxmusic.evaluation.family_training",
    "frechet_distance": "fluxmusic.evaluation.frechet",
    "gaussian_stats": "fluxmusic.evaluation.frechet",
    "load_or_train_classifier": "fluxmusic.evaluation.judge",
    "train_demo_classifier": "fluxmusic.evaluation.judge",
    "Reconstruction": "fluxmusic.evaluation.reconstruction",
    "reconstruction_report": "fluxmusic.evaluation.reconstruction",
    "TempoAgreement": "fluxmusic.evaluation.tempo",
    "estimate_tempi": "fluxmusic.evaluation.tempo",
    "estimate_tempo": "fluxmusic.evaluation.tempo",
    "tempo_agreement": "fluxmusic.evaluation.tempo",
    "tempo_report": "fluxmusic.evaluation.tempo_report",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _LAZY)
