"""The default consent keywords and button payloads, in the languages our customers' customers
write; ``CONSENT_STOP_KEYWORDS`` and the other settings replace them."""

from __future__ import annotations

DEFAULT_STOP_WORDS: tuple[str, ...] = (
    # English
    "STOP",
    "STOP ALL",
    "STOPALL",
    "STOP PROMOTIONS",
    "UNSUBSCRIBE",
    "OPT OUT",
    "OPTOUT",
    # Spanish
    "BAJA",
    "DARME DE BAJA",
    "PARAR",
    "DETENER",
    "NO MÁS",
    "CANCELAR SUSCRIPCIÓN",
    # Portuguese
    "PARE",
    "SAIR",
    "DESCADASTRAR",
    "CANCELAR INSCRIÇÃO",
    # French
    "ARRÊT",
    "ARRÊTER",
    "DÉSABONNER",
    "ME DÉSABONNER",
    "DÉSINSCRIPTION",
    # German
    "STOPP",
    "ABMELDEN",
    "ABBESTELLEN",
    # Hindi
    "बंद",
    "बंद करो",
    "रोकें",
    # Indonesian
    "BERHENTI",
    "BERHENTI LANGGANAN",
    # Arabic
    "توقف",
    "إيقاف",
    "إلغاء الاشتراك",
)
DEFAULT_START_WORDS: tuple[str, ...] = (
    "START",
    "SUBSCRIBE",
    "UNSTOP",
    "OPT IN",
    "OPTIN",
    "ALTA",
    "DARME DE ALTA",
    "SUSCRIBIR",
    "SUSCRIBIRME",
    "INSCREVER",
    "ASSINAR",
    "ABONNER",
    "M'ABONNER",
    "ANMELDEN",
    "ABONNIEREN",
    "शुरू",
    "शुरू करो",
    "MULAI",
    "BERLANGGANAN",
    "ابدأ",
    "اشتراك",
)
DEFAULT_STOP_PAYLOADS: tuple[str, ...] = ("STOP_PROMOTIONS", "STOP")
DEFAULT_START_PAYLOADS: tuple[str, ...] = ("RESUME_PROMOTIONS", "START")
