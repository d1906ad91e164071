"""The sender for the configured provider."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from maxloyalty.integrations.sms.base import SmsSender
from maxloyalty.integrations.sms.console import ConsoleSmsSender
from maxloyalty.integrations.sms.smsc import SMSC_URL, SmscSender
from maxloyalty.integrations.sms.smsru import SMSRU_URL, SmsRuSender
from maxloyalty.integrations.sms.twilio import TWILIO_URL, TwilioSender


@dataclass(frozen=True)
class SmsConfig:
    provider: Literal["console", "smsru", "smsc", "twilio"] = "console"
    smsru_api_id: str | None = None
    smsc_login: str | None = None
    smsc_password: str | None = None
    smsc_apikey: str | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from: str | None = None
    twilio_messaging_service_sid: str | None = None
    base_url: str | None = None  # instead of the provider's production address, e.g. in tests


def sms_sender(config: SmsConfig) -> SmsSender:
    """Raises ValueError naming the missing setting, so a bad deployment fails at start-up."""
    match config.provider:
        case "console":
            return ConsoleSmsSender()
        case "smsru":
            return SmsRuSender(
                _setting(config, "smsru_api_id"), base_url=config.base_url or SMSRU_URL
            )
        case "smsc":
            if not (config.smsc_apikey or (config.smsc_login and config.smsc_password)):
                raise ValueError(
                    "SMS provider 'smsc' needs smsc_apikey, or smsc_login and smsc_password"
                )
            return SmscSender(
                config.smsc_login,
                config.smsc_password,
                apikey=config.smsc_apikey,
                base_url=config.base_url or SMSC_URL,
            )
        case "twilio":
            if bool(config.twilio_from) == bool(config.twilio_messaging_service_sid):
                raise ValueError(
                    "SMS provider 'twilio' needs exactly one of twilio_from"
                    " and twilio_messaging_service_sid"
                )
            return TwilioSender(
                _setting(config, "twilio_account_sid"),
                _setting(config, "twilio_auth_token"),
                from_number=config.twilio_from,
                messaging_service_sid=config.twilio_messaging_service_sid,
                base_url=config.base_url or TWILIO_URL,
            )
        case _:  # the configuration may come from untyped environment variables
            raise ValueError(f"unknown SMS provider {config.provider!r}")


def _setting(config: SmsConfig, name: str) -> str:
    value: str | None = getattr(config, name)
    if not value:
        raise ValueError(f"SMS provider {config.provider!r} needs the {name} setting")
    return value
