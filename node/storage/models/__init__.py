"""Tables, one module per concern (actors, outbound, inbound, events, media, news, networks,
mail, accounts, campaigns, peers, clientapi, crosspost); one class per table; queues carry
explicit states.

Conventions: datetimes are aware UTC (``db.utcnow``); URIs are full URLs;
no table stores an IP address (DESIGN.md, safety defaults).
Importing this package registers every table on ``SQLModel.metadata`` (migrations and
tests rely on that); modules refer to each other only through foreign-key names.
"""

from __future__ import annotations

from node.storage.models.accounts import (
    Account,
    AccountGroup,
    AccountSession,
    ApiToken,
    Draft,
    LoginFailure,
    NodeSecret,
    PasswordLink,
)
from node.storage.models.actors import Follower, Following, LocalActor, RemoteActor
from node.storage.models.campaigns import Campaign, CampaignOwner
from node.storage.models.clientapi import (
    ClientMarker,
    ClientNotification,
    IdempotencyKey,
    OAuthApp,
    OAuthCode,
    OAuthToken,
)
from node.storage.models.crosspost import CrosspostAccount, CrosspostItem
from node.storage.models.events import Cosigner, Event, Invitation, Participation
from node.storage.models.inbound import InboxItem, Interaction, RemoteObject, SyncState
from node.storage.models.mail import (
    MailMessage,
    MailQueueItem,
    MailSubscriber,
    MailSubscription,
    MailSuppression,
    MailThrottle,
)
from node.storage.models.media import MediaFile
from node.storage.models.networks import Network, NetworkJoin, NetworkMembership, NetworkRoster
from node.storage.models.news import NewsBulletin, NewsChannel, NewsCopy, NewsItem
from node.storage.models.outbound import Activity, DeliveryFailure, Fanout, HostState, LocalObject
from node.storage.models.peers import DomainRule, Peer

__all__ = [
    "Account",
    "AccountGroup",
    "AccountSession",
    "Activity",
    "ApiToken",
    "Campaign",
    "CampaignOwner",
    "ClientMarker",
    "ClientNotification",
    "Cosigner",
    "CrosspostAccount",
    "CrosspostItem",
    "DeliveryFailure",
    "DomainRule",
    "Draft",
    "Event",
    "Fanout",
    "Follower",
    "Following",
    "HostState",
    "IdempotencyKey",
    "InboxItem",
    "Interaction",
    "Invitation",
    "LocalActor",
    "LocalObject",
    "LoginFailure",
    "MailMessage",
    "MailQueueItem",
    "MailSubscriber",
    "MailSubscription",
    "MailSuppression",
    "MailThrottle",
    "MediaFile",
    "Network",
    "NetworkJoin",
    "NetworkMembership",
    "NetworkRoster",
    "NewsBulletin",
    "NewsChannel",
    "NewsCopy",
    "NewsItem",
    "NodeSecret",
    "OAuthApp",
    "OAuthCode",
    "OAuthToken",
    "Participation",
    "PasswordLink",
    "Peer",
    "RemoteActor",
    "RemoteObject",
    "SyncState",
]
