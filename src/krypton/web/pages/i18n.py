"""The words on the pages people see, in English and Russian (the product's first users
write Russian), and which language a request gets."""

from __future__ import annotations

from typing import Final

LANGUAGES: Final = ("en", "ru")
NAMES: Final = {"en": "English", "ru": "Русский"}

TEXT: Final[dict[str, dict[str, str]]] = {
    "en": {
        "title": "Payment",
        "pay": "Pay",
        "choose_method": "Pay with",
        "send_exactly": "Send exactly",
        "to_address": "To address",
        "memo": "Comment (memo)",
        "memo_hint": "Put this comment in the transfer exactly as shown, or the payment cannot be matched.",
        "copy": "Copy",
        "copied": "Copied",
        "open_wallet": "Open in wallet",
        "connect_wallet": "Connect wallet",
        "pay_with_wallet": "Pay with connected wallet",
        "wallet_sent": "Sent from your wallet. Waiting for the network…",
        "wallet_failed": "The wallet did not send the payment.",
        "scan": "Scan with a wallet app",
        "pending": "Waiting for your payment",
        "underpaid": "Partly paid: {remaining} {asset} still due",
        "confirming": "Payment received, confirming",
        "confirmations": "{seen} of {required} confirmations",
        "tron_wait": "Tron payments are final once their block is solidified (about a minute).",
        "paid": "Paid. Thank you!",
        "paid_late": "Paid after the deadline. The merchant has been told and will confirm your order.",
        "overpaid": "You paid more than the price; the merchant has been told.",
        "redirecting": "Returning you to the shop…",
        "back_to_shop": "Back to the shop",
        "expired": "This invoice has expired. Do not send money to it. If you already paid, "
                   "contact the shop with the invoice number: late payments are still recorded.",
        "cancelled": "This invoice was cancelled by the shop. Do not send money to it.",
        "time_left": "Time left",
        "hurry": "Less than {minutes} minutes left to pay",
        "invoice": "Invoice",
        "stars_elsewhere": "Telegram Stars are paid inside Telegram.",
        "pay_stars": "Pay with Telegram Stars",
        "devnet": "Devnet: no real money",
        "devnet_pay": "Pay with devnet wallet",
        "devnet_exact": "Exact amount",
        "devnet_under": "Underpay",
        "devnet_over": "Overpay",
        "not_found": "There is no invoice with this number. Check the link the shop gave you.",
        "language": "Language",
        "no_script": "This page updates itself with JavaScript; without it, reload to see the status.",
        "method_ton": "TON", "method_usdt_ton": "USDT on TON", "method_usdt_trc20": "USDT on Tron",
        "method_stars": "Telegram Stars",
        "asset_TON": "TON", "asset_USDT_TON": "USDT", "asset_USDT_TRC20": "USDT", "asset_XTR": "Stars",
        "network_note_usdt_trc20": "Send USDT (TRC-20) on the Tron network only.",
        "network_note_usdt_ton": "Send USDT on the TON network (a jetton transfer) only.",
        # The Telegram Mini App (/tg/app/{id}).
        "my_purchases": "My purchases",
        "no_purchases": "No purchases yet.",
        "more": "Show more",
        "not_owner": "Another Telegram account opened this invoice first, so it is in their "
                     "purchases, not yours. You can still pay it.",
        "session_failed": "Telegram could not confirm who you are, so your purchases are not "
                          "shown. Open the app again from the bot; you can still pay.",
        "outside_telegram": "Open this page from the shop's Telegram bot to see your purchases.",
        "stars_paid": "Telegram accepted the payment. Confirming…",
        "stars_failed": "The Stars payment did not go through.",
        "stars_cancelled": "The Stars payment was cancelled.",
        "status_pending": "Awaiting payment", "status_confirming": "Confirming", "status_paid": "Paid",
        "status_expired": "Expired", "status_cancelled": "Cancelled", "status_underpaid": "Partly paid",
        "status_refunded": "Refunded",
    },
    "ru": {
        "title": "Оплата",
        "pay": "Оплатить",
        "choose_method": "Способ оплаты",
        "send_exactly": "Отправьте ровно",
        "to_address": "На адрес",
        "memo": "Комментарий (memo)",
        "memo_hint": "Укажите этот комментарий в переводе точно как здесь, иначе платёж не будет найден.",
        "copy": "Копировать",
        "copied": "Скопировано",
        "open_wallet": "Открыть в кошельке",
        "connect_wallet": "Подключить кошелёк",
        "pay_with_wallet": "Оплатить подключённым кошельком",
        "wallet_sent": "Отправлено из кошелька. Ждём сеть…",
        "wallet_failed": "Кошелёк не отправил платёж.",
        "scan": "Отсканируйте приложением кошелька",
        "pending": "Ожидаем ваш платёж",
        "underpaid": "Оплачено частично: осталось {remaining} {asset}",
        "confirming": "Платёж получен, подтверждаем",
        "confirmations": "Подтверждений: {seen} из {required}",
        "tron_wait": "Платёж в Tron окончателен, когда его блок подтверждён сетью (около минуты).",
        "paid": "Оплачено. Спасибо!",
        "paid_late": "Оплачено после срока. Магазин уведомлён и подтвердит заказ.",
        "overpaid": "Вы заплатили больше цены; магазин уведомлён.",
        "redirecting": "Возвращаем вас в магазин…",
        "back_to_shop": "Вернуться в магазин",
        "expired": "Срок этого счёта истёк. Не отправляйте на него деньги. Если вы уже заплатили, "
                   "напишите в магазин с номером счёта: поздние платежи тоже учитываются.",
        "cancelled": "Магазин отменил этот счёт. Не отправляйте на него деньги.",
        "time_left": "Осталось",
        "hurry": "Осталось меньше {minutes} минут на оплату",
        "invoice": "Счёт",
        "stars_elsewhere": "Telegram Stars оплачиваются в Telegram.",
        "pay_stars": "Оплатить Telegram Stars",
        "devnet": "Devnet: ненастоящие деньги",
        "devnet_pay": "Оплатить devnet-кошельком",
        "devnet_exact": "Точная сумма",
        "devnet_under": "Меньше",
        "devnet_over": "Больше",
        "not_found": "Счёта с таким номером нет. Проверьте ссылку от магазина.",
        "language": "Язык",
        "no_script": "Страница обновляется сама с помощью JavaScript; без него обновите её вручную.",
        "method_ton": "TON", "method_usdt_ton": "USDT в сети TON", "method_usdt_trc20": "USDT в сети Tron",
        "method_stars": "Telegram Stars",
        "asset_TON": "TON", "asset_USDT_TON": "USDT", "asset_USDT_TRC20": "USDT", "asset_XTR": "Stars",
        "network_note_usdt_trc20": "Отправляйте USDT (TRC-20) только в сети Tron.",
        "network_note_usdt_ton": "Отправляйте USDT только в сети TON (перевод жетона).",
        # Мини-приложение Telegram (/tg/app/{id}).
        "my_purchases": "Мои покупки",
        "no_purchases": "Покупок пока нет.",
        "more": "Показать ещё",
        "not_owner": "Этот счёт первым открыл другой аккаунт Telegram, поэтому он в его "
                     "покупках, а не в ваших. Оплатить его вы всё равно можете.",
        "session_failed": "Telegram не подтвердил, кто вы, поэтому покупки не показаны. "
                          "Откройте приложение заново из бота; оплатить можно и так.",
        "outside_telegram": "Откройте эту страницу из Telegram-бота магазина, чтобы увидеть покупки.",
        "stars_paid": "Telegram принял платёж. Подтверждаем…",
        "stars_failed": "Платёж в Stars не прошёл.",
        "stars_cancelled": "Платёж в Stars отменён.",
        "status_pending": "Ожидает оплаты", "status_confirming": "Подтверждается", "status_paid": "Оплачен",
        "status_expired": "Истёк", "status_cancelled": "Отменён", "status_underpaid": "Оплачен частично",
        "status_refunded": "Возвращён",
    },
}


def choose(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    """The language asked for in the URL, else the one chosen before (cookie), else the
    browser's first supported preference (Accept-Language, by q-value), else English."""
    for given in (query, cookie):
        if given in LANGUAGES:
            return given
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        language = tag.strip().lower().split("-")[0]
        if language in LANGUAGES and quality > 0:
            ranked.append((-quality, position, language))
    return min(ranked)[2] if ranked else "en"
