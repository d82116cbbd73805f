"""The choices and defaults the command line offers, kept light (no PyTorch, pandas or plotting) so that
``gatedrec --help`` answers at once; the modules that act on them import them from here."""

DEFAULT_MODEL = "rlmultimodalrec"
MODEL_NAMES = ("bpr", "lightgcn", "vbpr", "mmgcn", "grcn", "lattice", "freedom", "bm3", "rlmultimodalrec",
               "content_knn")
GRIDS = ("small", "default")
MISSING_MODES = ("mask", "mean")
SPLIT_NAMES = ("random-8-1-1", "temporal-8-1-1", "leave-one-out", "cold-items:SHARE")
DEFAULT_TEXT_FIELDS = ("title", "brand", "categories", "description")
DEFAULT_TEXT_ENCODER = "all-MiniLM-L6-v2"
DEFAULT_IMAGE_ENCODER = "efficientnet-lite0"
INDEXES = ("exact", "hnsw")
MISSING_PROTOCOLS = ("dgmrec", "sweep")
# the robustness studies' default models: RLMultimodalRec, its paper's element gate, its gate without the
# agreement input and two fixed fusions; the multimodal baselines with the literature's imputations (mean-fill,
# zero-fill); LightGCN as the floor
MISSING_STUDY_MODELS = (
    "rlmultimodalrec,rlmultimodalrec:missing=mean,rlmultimodalrec:missing=zero,rlmultimodalrec:gate=element,"
    "rlmultimodalrec:gate_agreement=false,rlmultimodalrec:fusion=concat,rlmultimodalrec:fusion=mean,freedom:missing=mean,freedom:missing=zero,"
    "lattice:missing=mean,lattice:missing=zero,bm3:missing=mean,bm3:missing=zero,vbpr:missing=mean,"
    "vbpr:missing=zero,lightgcn"
)
NOISE_STUDY_MODELS = ("rlmultimodalrec,rlmultimodalrec:gate=element,rlmultimodalrec:gate_agreement=false,"
                      "rlmultimodalrec:fusion=concat,rlmultimodalrec:fusion=mean,freedom,lattice,bm3,vbpr,lightgcn")
