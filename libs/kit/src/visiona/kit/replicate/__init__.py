"""Replicate, shared by the services that use it (training, generation): errors, the SDK
client, and Standard Webhooks verification with the SDK.

Each service keeps its own small port and adapter for what it asks of Replicate (a
:class:`ReplicateAdapter`); what is the same for both lives here: the SDK client and the
webhook secrets from the service's settings (:class:`ReplicateServiceSettings`), the calls'
error handling, a version's existence, and the webhook inbox with its RPC
(:class:`WebhookIngestRpc`).
"""

from visiona.kit.replicate.adapter import (
    ReplicateAdapter,
    ReplicateServiceSettings,
    WebhookSecrets,
    client,
)
from visiona.kit.replicate.errors import Failure, InvalidWebhook, ProviderError, wrap
from visiona.kit.replicate.jobs import ReplicateJobs, run_paid_jobs
from visiona.kit.replicate.webhooks import (
    WebhookInbox,
    WebhookIngestRpc,
    forget_old_webhooks,
    job_webhooks,
    verify_webhook,
)

__all__ = [
    "Failure",
    "InvalidWebhook",
    "ProviderError",
    "ReplicateAdapter",
    "ReplicateJobs",
    "ReplicateServiceSettings",
    "WebhookInbox",
    "WebhookIngestRpc",
    "WebhookSecrets",
    "client",
    "forget_old_webhooks",
    "job_webhooks",
    "run_paid_jobs",
    "verify_webhook",
    "wrap",
]
