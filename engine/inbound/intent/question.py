"""The question that asks a customer to confirm an opt-out read in their words, in the
language of those words; the button ids are the same in every language."""

from __future__ import annotations

from engine.models.content import ButtonsContent, ReplyButton

INTENT_STOP = "CONSENT_INTENT_STOP"
INTENT_KEEP = "CONSENT_INTENT_KEEP"

# body, the stop button's title, the keep button's title (titles: 20 characters at most)
WORDING: dict[str, tuple[str, str, str]] = {
    "en": (
        "It sounds like you'd rather not get our promotions. "
        "Should we stop sending you marketing messages?",
        "Stop promotions",
        "Keep them",
    ),
    "es": (
        "Parece que prefieres no recibir nuestras promociones. "
        "¿Dejamos de enviarte mensajes de marketing?",
        "Sí, dejar de enviar",
        "No, seguir",
    ),
    "fr": (
        "Vous semblez ne plus vouloir recevoir nos promotions. "
        "Devons-nous arrêter de vous envoyer des messages marketing ?",
        "Oui, arrêter",
        "Non, continuer",
    ),
    "pt": (
        "Parece que você prefere não receber nossas promoções. "
        "Paramos de enviar mensagens de marketing?",
        "Sim, parar",
        "Não, continuar",
    ),
    "de": (
        "Es klingt, als möchten Sie keine Werbung mehr von uns. "
        "Sollen wir Ihnen keine Marketing-Nachrichten mehr senden?",
        "Ja, stoppen",
        "Nein, behalten",
    ),
    "it": (
        "Sembra che tu non voglia più ricevere le nostre promozioni. "
        "Smettiamo di inviarti messaggi di marketing?",
        "Sì, smetti",
        "No, continua",
    ),
    "id": (
        "Sepertinya Anda tidak ingin menerima promo kami lagi. "
        "Haruskah kami berhenti mengirim pesan pemasaran?",
        "Ya, berhenti",
        "Tidak, lanjut",
    ),
    "hi": (
        "Lagta hai aap hamare promotions nahi chahte. "
        "Kya hum marketing messages bhejna band kar dein?",
        "Haan, band karo",
        "Nahi, chalu rakho",
    ),
}


def question(language: str) -> ButtonsContent:
    body, stop, keep = WORDING.get(language, WORDING["en"])
    return ButtonsContent(
        body=body,
        buttons=(ReplyButton(id=INTENT_STOP, title=stop), ReplyButton(id=INTENT_KEEP, title=keep)),
    )
