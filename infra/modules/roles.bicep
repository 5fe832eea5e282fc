// Role assignments of the app's managed identity, each on the narrowest scope that works and named
// guid(scope, principal, role) so that a redeployment finds the same assignment again:
//   storage account:       Storage Blob / Table / Queue Data Contributor (data, catalog, work queues,
//                          the Functions host's own state, user-delegation SAS for downloads/uploads)
//   Key Vault:             Key Vault Secrets Officer (Key Vault references in app settings, and the
//                          webhooks' signing secrets the app writes, rotates and disables; it holds
//                          Secrets User's reads, so that role is not assigned besides it)
//   container registry:    AcrPull (the function app pulls its image with the identity)
//   Application Insights:  Monitoring Metrics Publisher (Entra ID-authenticated telemetry)
//   Event Grid topic:      EventGrid Data Sender (the jobs' events; the topic has no keys)
//   flexible servers' resource groups: a custom role to restore them to a point in time, assigned there by
//                          modules/flexibleservers.bicep (main.bicep's pointInTimeOnFlexibleServers)
// Optionally, operators get Key Vault Secrets Officer to store the database passwords.

@description('Object (principal) id of the app managed identity.')
param principalId string

@description('Storage account name.')
param storageAccountName string

@description('Key Vault name.')
param keyVaultName string

@description('Container registry name.')
param registryName string

@description('Application Insights name.')
param appInsightsName string

@description('Event Grid topic name.')
param eventGridTopicName string

@description('Object ids of users or groups that may write secrets (database passwords) into the Key Vault.')
param secretsOfficerPrincipalIds array

// Built-in role definition ids, each named beside it; tools/arm_check.py holds them against its table.
var roles = {
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe' // Storage Blob Data Contributor
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88' // Storage Queue Data Contributor
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // Storage Table Data Contributor
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7' // Key Vault Secrets Officer
  acrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d' // AcrPull
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb' // Monitoring Metrics Publisher
  eventGridDataSender: 'd5a91429-5739-47e2-a06b-3470a27159e7' // EventGrid Data Sender
}

var storageRoles = [
  roles.storageBlobDataContributor
  roles.storageQueueDataContributor
  roles.storageTableDataContributor
]

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource eventGridTopic 'Microsoft.EventGrid/topics@2025-02-15' existing = {
  name: eventGridTopicName
}

resource storageRoleAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for roleId in storageRoles: {
  name: guid(storage.id, principalId, roleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}]

resource secretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, roles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource acrPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, principalId, roles.acrPull)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.acrPull)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, principalId, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource eventSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(eventGridTopic.id, principalId, roles.eventGridDataSender)
  scope: eventGridTopic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventGridDataSender)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource secretsOfficers 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for officerId in secretsOfficerPrincipalIds: {
  name: guid(vault.id, officerId, roles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: officerId
  }
}]
