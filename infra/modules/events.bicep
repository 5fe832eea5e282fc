// The Event Grid topic every job's outcome is published to, as CloudEvents 1.0 (the app's setting
// APPBACKUPS_EVENTGRID_TOPIC_ENDPOINT names it). Local (key) authentication is off: the app publishes with
// its managed identity, which holds EventGrid Data Sender on this topic (roles.bicep). Subscribers are
// Event Grid's to add (Logic Apps, Functions, webhooks, Service Bus; Event Grid retries and can
// dead-letter); optionally this module adds one for the failures, to a webhook (failureWebhookUrl).

@description('Topic name.')
param name string

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Log Analytics workspace that receives the topic delivery and publish failures.')
param logAnalyticsWorkspaceId string

@description('HTTPS endpoint that receives the failure events (backup, restore, download, upload failed; verification failed; schedule missed) as CloudEvents; empty: no such subscription. It must answer the CloudEvents webhook validation (OPTIONS with WebHook-Request-Origin), as Logic Apps and Azure Functions do.')
@secure()
param failureWebhookUrl string

// shared/domain/events.py FAILURES.
var failureEventTypes = [
  'appbackups.backup.failed'
  'appbackups.restore.failed'
  'appbackups.verification.failed'
  'appbackups.download.failed'
  'appbackups.upload.failed'
  'appbackups.schedule.missed'
]

resource topic 'Microsoft.EventGrid/topics@2025-02-15' = {
  // checkov:skip=CKV_AZURE_193: The app publishes from the function app, which has no virtual network in this template (infra/README.md, Network isolation); publishing needs an Entra token with EventGrid Data Sender, and keys are off.
  name: name
  location: location
  tags: tags
  // Event Grid's own identity, for subscriptions that deliver to Azure resources (Service Bus, Event Hubs,
  // storage queues, a dead-letter container) with a role instead of a key.
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    disableLocalAuth: true
    minimumTlsVersionAllowed: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource failures 'Microsoft.EventGrid/topics/eventSubscriptions@2025-02-15' = if (!empty(failureWebhookUrl)) {
  parent: topic
  name: 'failures'
  properties: {
    eventDeliverySchema: 'CloudEventSchemaV1_0'
    destination: {
      endpointType: 'WebHook'
      properties: {
        endpointUrl: failureWebhookUrl
        maxEventsPerBatch: 1
      }
    }
    filter: {
      includedEventTypes: failureEventTypes
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
  }
}

resource topicLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: topic
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        category: 'DeliveryFailures'
        enabled: true
      }
      {
        category: 'PublishFailures'
        enabled: true
      }
    ]
  }
}

output name string = topic.name
output id string = topic.id
output endpoint string = topic.properties.endpoint
