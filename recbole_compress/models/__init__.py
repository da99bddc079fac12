"""recbole_compress models. Importing this package registers every model and
compression method with :mod:`recbole_compress.registry`."""

from recbole_compress.models.lth import BPR_LTH, LTH, LightGCN_LTH
from recbole_compress.models.jpq import JPQ, BERT4Rec_JPQ, GRU4Rec_JPQ, SASRec_JPQ
from recbole_compress.models.cerp import CERP, PEP, QR, BPR_CERP, LightGCN_CERP
from recbole_compress.models.multitask import ESMM, LT4Rec, MMoE, SharedBottom
from recbole_compress.models.transrec import TransRec

__all__ = ["BPR_LTH", "LightGCN_LTH", "LTH", "JPQ", "SASRec_JPQ", "BERT4Rec_JPQ", "GRU4Rec_JPQ",
           "CERP", "PEP", "QR", "BPR_CERP", "LightGCN_CERP", "SharedBottom", "ESMM", "MMoE", "LT4Rec", "TransRec"]
