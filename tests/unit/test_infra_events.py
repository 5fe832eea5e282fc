"""The Event Grid topic against the code: CloudEvents in, no keys, the app's identity may send to it (and
only to it), the function app is told its endpoint under the setting the code reads, and the optional
failure subscription takes exactly the event types the code calls failures."""

from __future__ import annotations

from pathlib import Path

from shared.config import Settings, StorageConnection
from shared.domain.events import FAILURES
from tools.check_infra import BicepFile, array_items, call_arguments, object_entries, path_value, unquote

INFRA = Path(__file__).resolve().parents[2] / "infra"
EVENTS = BicepFile(INFRA / "modules" / "events.bicep")
ROLES = BicepFile(INFRA / "modules" / "roles.bicep")
MAIN = BicepFile(INFRA / "main.bicep")
FUNCTIONAPP = BicepFile(INFRA / "modules" / "functionapp.bicep")
SENDER = "d5a91429-5739-47e2-a06b-3470a27159e7"  # EventGrid Data Sender


def test_the_topic_takes_cloudevents_and_no_keys() -> None:
    [topic] = EVENTS.resources_of_type("Microsoft.EventGrid/topics")
    properties = path_value(topic.body, "properties")
    assert unquote(path_value(properties, "inputSchema")) == "CloudEventSchemaV1_0"
    assert path_value(properties, "disableLocalAuth") == "true"
    assert unquote(path_value(properties, "minimumTlsVersionAllowed")) == "1.2"


def test_the_app_identity_may_send_events_to_the_topic_and_nothing_more() -> None:
    assert unquote(object_entries(ROLES.var("roles"))["eventGridDataSender"]) == SENDER
    [topic] = ROLES.resources_of_type("Microsoft.EventGrid/topics")
    assert topic.existing
    assignments = [
        resource
        for resource in ROLES.resources_of_type("Microsoft.Authorization/roleAssignments")
        if "eventGridDataSender" in resource.body
    ]
    [assignment] = assignments
    entries = object_entries(assignment.body)
    assert entries["scope"] == topic.symbol, "the role is on the topic, not the resource group"
    assert call_arguments(entries["name"]) == [f"{topic.symbol}.id", "principalId", "roles.eventGridDataSender"]
    assert path_value(assignment.body, "properties", "principalId") == "principalId"
    [roles_module] = [module for module in MAIN.modules() if module.path == "modules/roles.bicep"]
    assert path_value(roles_module.body, "params", "eventGridTopicName") == "events.outputs.name"


def test_the_function_app_publishes_to_the_topic_it_is_given() -> None:
    settings = {
        key: value
        for key, value in object_entries(FUNCTIONAPP.var("appbackupsSettings")).items()
        if key.startswith("APPBACKUPS_")
    }
    endpoint = settings["APPBACKUPS_EVENTGRID_TOPIC_ENDPOINT"]
    assert endpoint == "eventGridTopicEndpoint"
    [app_module] = [module for module in MAIN.modules() if module.path == "modules/functionapp.bicep"]
    assert path_value(app_module.body, "params", "eventGridTopicEndpoint") == "events.outputs.endpoint"
    assert "output endpoint string = topic.properties.endpoint" in EVENTS.text
    read = Settings.from_environ(
        {"BackupStorage": "UseDevelopmentStorage=true", "APPBACKUPS_EVENTGRID_TOPIC_ENDPOINT": "https://t/api/events"}
    )
    assert read.event_grid_endpoint == "https://t/api/events"
    assert Settings(storage=StorageConnection(connection_string="x")).event_grid_endpoint is None


def test_the_failure_subscription_is_optional_and_takes_the_failures() -> None:
    [subscription] = EVENTS.resources_of_type("Microsoft.EventGrid/topics/eventSubscriptions")
    assert subscription.condition == "!empty(failureWebhookUrl)"
    assert "@secure()\nparam failureWebhookUrl string" in EVENTS.text
    types = {unquote(item) for item in array_items(EVENTS.var("failureEventTypes"))}
    assert types == {event.value for event in FAILURES}
    properties = path_value(subscription.body, "properties")
    assert unquote(path_value(properties, "eventDeliverySchema")) == "CloudEventSchemaV1_0"
    assert path_value(properties, "filter", "includedEventTypes") == "failureEventTypes"
    assert unquote(path_value(properties, "destination", "endpointType")) == "WebHook"
