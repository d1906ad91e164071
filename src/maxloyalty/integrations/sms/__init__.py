"""Text messages to guests (one-time login codes) through SMS.ru, SMSC.ru, Twilio or the log."""

from maxloyalty.integrations.sms.base import SentSms, SmsError, SmsSender
from maxloyalty.integrations.sms.factory import SmsConfig, sms_sender

__all__ = ["SentSms", "SmsConfig", "SmsError", "SmsSender", "sms_sender"]
