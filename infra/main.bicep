// appbackups on Azure. One resource group holds the whole service; each concern is a module:
//   modules/identity.bicep     user-assigned managed identity of the app
//   modules/monitoring.bicep   Log Analytics, Application Insights (Entra ID ingestion), alerts
//   modules/storage.bicep      storage account: containers, tables, queues, versioning, soft delete,
//                              lifecycle rules, optional WORM for snapshots
//   modules/keyvault.bicep     Key Vault for database passwords (Key Vault references) and webhook signing secrets
//   modules/registry.bicep     container registry for the appbackups image
//   modules/events.bicep       Event Grid topic of the jobs' events (CloudEvents), optional failure subscription
//   modules/roles.bicep        the identity's role assignments
//   modules/flexibleservers.bicep  optional: its role in resource groups of PostgreSQL flexible servers (point in time)
//   modules/functionapp.bicep  Elastic Premium plan, function app (container), App Service Authentication
// Two ways to deploy it (infra/README.md has both, step by step): `azd up` (azure.yaml; main.parameters.json
// takes azd's environment variables), or `az deployment group create` with `az acr build`.

targetScope = 'resourceGroup'

@description('Short name of the deployment, used in every resource name: 3-12 lower-case letters and digits.')
@minLength(3)
@maxLength(12)
param appName string = 'appbackups'

@description('Azure region of every resource.')
param location string = resourceGroup().location

@description('Tags for every resource.')
param tags object = {
  application: 'appbackups'
}

@description('Tag of the appbackups image in the registry. Empty: deploy everything except the function app (the first run, before an image has been pushed).')
param imageTag string = ''

@description('Repository of the appbackups image in the registry.')
param imageRepository string = 'appbackups'

@description('Full reference of the image to run, as azd records it after a deploy (SERVICE_API_IMAGE_NAME); takes precedence over imageTag.')
param imageName string = ''

@description('Create the function app even before an image of the app exists, on the stock Functions Python image, for azd deploy to replace (azd provision runs before azd deploy).')
param placeholderImage bool = false

@description('Application (client) id of the Microsoft Entra app registration of the API (infra/README.md, Post-deploy steps).')
param authClientId string

@description('What App Service Authentication does with a request without a valid token: RedirectToLoginPage suits the Backups page in a browser, Return401 suits API-only use.')
@allowed([
  'RedirectToLoginPage'
  'Return401'
])
param unauthenticatedAction string = 'RedirectToLoginPage'

@description('Paths that App Service Authentication lets through without a token, e.g. /api/health for an outside probe. Empty by default: every path needs a signed-in caller.')
param authExcludedPaths array = []

@description('Object ids of the global admins (APPBACKUPS_GLOBAL_ADMINS): Microsoft Entra users or service principals.')
param globalAdmins array = []

@description('Extra app settings: database password settings as Key Vault references, APPBACKUPS_* tuning, timer schedule overrides. They cannot replace the settings the template fixes (infra/README.md, App settings).')
param appSettings object = {}

@description('Overrides host.json functionTimeout through the AzureFunctionsJobHost__functionTimeout app setting (hh:mm:ss); empty keeps the value in host.json.')
param functionTimeout string = ''

@description('Elastic Premium plan size.')
@allowed([
  'EP1'
  'EP2'
  'EP3'
])
param planSku string = 'EP1'

@description('Always-ready instances of the plan.')
@minValue(1)
@maxValue(20)
param minimumInstances int = 1

@description('Most instances the plan scales out to. Above minimumInstances the plan can scale in, which gives a running execution 60 minutes to finish (infra/README.md, Hosting).')
@minValue(1)
@maxValue(100)
param maximumInstances int = 1

@description('Replication of the storage account.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
param storageSku string = 'Standard_GRS'

@description('Days deleted blobs, blob versions and containers stay recoverable (soft delete).')
@minValue(1)
@maxValue(365)
param softDeleteDays int = 14

@description('Days previous blob versions are kept.')
@minValue(1)
@maxValue(365)
param versionRetentionDays int = 14

@description('Days after which the lifecycle policy deletes a download archive that the app did not remove.')
@minValue(1)
@maxValue(30)
param archiveRetentionDays int = 1

@description('Days after which the lifecycle policy deletes an abandoned upload.')
@minValue(1)
@maxValue(30)
param uploadRetentionDays int = 3

@description('Time-based immutability (WORM) of the snapshots container, in days; 0 (the default) turns it off. At most 13: see infra/README.md, Immutability.')
@minValue(0)
@maxValue(13)
param snapshotImmutabilityDays int = 0

@description('Days Log Analytics keeps logs.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

@description('E-mail addresses that receive the alerts (failed backups, no successful backup in 26 hours).')
param alertEmailAddresses array = []

@description('HTTPS endpoint that receives the failure events from the Event Grid topic (backup, restore, download, upload failed; schedule missed); empty: none. See infra/README.md, Events.')
@secure()
param failureWebhookUrl string = ''

@description('Container registry SKU.')
@allowed([
  'Basic'
  'Standard'
  'Premium'
])
param registrySku string = 'Basic'

@description('Object ids of users or groups that get Key Vault Secrets Officer, to store the database passwords.')
param secretsOfficerPrincipalIds array = []

@description('Environments on Azure Database for PostgreSQL flexible servers are restored to a point in time by Azure (APPBACKUPS_FLEXIBLE_SERVERS): the identity gets a custom role to restore, read and delete temporary servers in each resource group of flexibleServerResourceGroups.')
param pointInTimeOnFlexibleServers bool = false

@description('Resource groups of this subscription holding those flexible servers, and the virtual network and private DNS zone a restore into their network joins; empty: this resource group.')
param flexibleServerResourceGroups array = []

var token = uniqueString(subscription().id, resourceGroup().id, appName)

// The stock image the function app starts on when azd provisions it before its first deploy.
var stockImage = 'mcr.microsoft.com/azure-functions/python:4-python3.11'
var deployFunctionApp = !empty(imageName) || !empty(imageTag) || placeholderImage
var flexibleServerGroups = pointInTimeOnFlexibleServers ? (empty(flexibleServerResourceGroups) ? [resourceGroup().name] : flexibleServerResourceGroups) : []

var names = {
  identity: 'id-${appName}-${token}'
  workspace: 'log-${appName}-${token}'
  appInsights: 'appi-${appName}-${token}'
  storage: take('st${appName}${token}', 24)
  keyVault: take('kv-${appName}-${token}', 24)
  registry: 'cr${appName}${token}'
  plan: 'plan-${appName}-${token}'
  functionApp: 'func-${appName}-${token}'
  eventGridTopic: 'evgt-${appName}-${token}'
}

module identity 'modules/identity.bicep' = {
  name: 'appbackups-identity'
  params: {
    name: names.identity
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'appbackups-monitoring'
  params: {
    namePrefix: appName
    workspaceName: names.workspace
    appInsightsName: names.appInsights
    location: location
    tags: tags
    retentionDays: logRetentionDays
    alertEmailAddresses: alertEmailAddresses
  }
}

module storage 'modules/storage.bicep' = {
  name: 'appbackups-storage'
  params: {
    name: names.storage
    location: location
    tags: tags
    skuName: storageSku
    softDeleteDays: softDeleteDays
    versionRetentionDays: versionRetentionDays
    archiveRetentionDays: archiveRetentionDays
    uploadRetentionDays: uploadRetentionDays
    snapshotImmutabilityDays: snapshotImmutabilityDays
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
    browserOrigins: [
      'https://${names.functionApp}.azurewebsites.net'
    ]
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'appbackups-keyvault'
  params: {
    name: names.keyVault
    location: location
    tags: tags
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
  }
}

module registry 'modules/registry.bicep' = {
  name: 'appbackups-registry'
  params: {
    name: names.registry
    location: location
    tags: tags
    skuName: registrySku
  }
}

module events 'modules/events.bicep' = {
  name: 'appbackups-events'
  params: {
    name: names.eventGridTopic
    location: location
    tags: tags
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
    failureWebhookUrl: failureWebhookUrl
  }
}

module roles 'modules/roles.bicep' = {
  name: 'appbackups-roles'
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    registryName: registry.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    eventGridTopicName: events.outputs.name
    secretsOfficerPrincipalIds: secretsOfficerPrincipalIds
  }
}

module flexibleServers 'modules/flexibleservers.bicep' = [for group in flexibleServerGroups: {
  name: 'appbackups-flexibleservers-${uniqueString(group)}'
  scope: resourceGroup(group)
  params: {
    principalId: identity.outputs.principalId
    appName: appName
  }
}]

module functionApp 'modules/functionapp.bicep' = if (deployFunctionApp) {
  name: 'appbackups-functionapp'
  params: {
    planName: names.plan
    functionAppName: names.functionApp
    location: location
    tags: tags
    planSku: planSku
    minimumInstances: minimumInstances
    maximumInstances: maximumInstances
    image: !empty(imageName) ? imageName : (!empty(imageTag) ? '${registry.outputs.loginServer}/${imageRepository}:${imageTag}' : stockImage)
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    blobEndpoint: storage.outputs.blobEndpoint
    queueEndpoint: storage.outputs.queueEndpoint
    tableEndpoint: storage.outputs.tableEndpoint
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
    authClientId: authClientId
    unauthenticatedAction: unauthenticatedAction
    authExcludedPaths: authExcludedPaths
    globalAdmins: globalAdmins
    eventGridTopicEndpoint: events.outputs.endpoint
    keyVaultUri: keyVault.outputs.uri
    functionTimeout: functionTimeout
    appSettings: appSettings
  }
  dependsOn: [
    roles
  ]
}

output identityName string = identity.outputs.name
output identityClientId string = identity.outputs.clientId
output identityPrincipalId string = identity.outputs.principalId
output storageAccountName string = storage.outputs.name
output keyVaultName string = keyVault.outputs.name
output keyVaultUri string = keyVault.outputs.uri
output registryName string = registry.outputs.name
output registryLoginServer string = registry.outputs.loginServer
output image string = !empty(imageName) ? imageName : (!empty(imageTag) ? '${registry.outputs.loginServer}/${imageRepository}:${imageTag}' : (placeholderImage ? stockImage : ''))
output eventGridTopicName string = events.outputs.name
output eventGridTopicEndpoint string = events.outputs.endpoint
output appInsightsName string = monitoring.outputs.appInsightsName
output logAnalyticsWorkspaceName string = monitoring.outputs.workspaceName
output alertRuleNames array = monitoring.outputs.alertRuleNames
output functionAppName string = deployFunctionApp ? functionApp.outputs.name : ''
output functionAppUrl string = deployFunctionApp ? functionApp.outputs.url : ''

// For azd: it builds the image into this registry and runs the hooks with these as environment variables.
output AZURE_CONTAINER_REGISTRY_ENDPOINT string = registry.outputs.loginServer
output AZURE_FUNCTION_APP_NAME string = deployFunctionApp ? functionApp.outputs.name : ''
output AZURE_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
