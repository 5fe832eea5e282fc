// The function app: a Linux Elastic Premium plan running the appbackups container image (the
// official Azure Functions Python image plus the PostgreSQL client, see /Dockerfile), signed in as
// the user-assigned managed identity everywhere:
//   - image pull from the registry (acrUseManagedIdentityCreds),
//   - the Functions host's storage and the app's storage (identity-based connections),
//   - Key Vault references in app settings (keyVaultReferenceIdentity), and the webhooks' signing
//     secrets the app keeps in the same vault (APPBACKUPS_KEY_VAULT_URL),
//   - Application Insights ingestion (Entra ID),
//   - App Service Authentication with Microsoft Entra ID, without a client secret: the identity is a
//     federated credential of the app registration (OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID).
// No connection string, account key or password is in any app setting.

@description('Plan name.')
param planName string

@description('Function app name (the host name is <name>.azurewebsites.net).')
param functionAppName string

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Elastic Premium size: EP1 (1 vCPU, 3.5 GB), EP2 (2 vCPU, 7 GB), EP3 (4 vCPU, 14 GB).')
@allowed([
  'EP1'
  'EP2'
  'EP3'
])
param planSku string

@description('Always-ready instances (at least 1: timers and queue polling never wait for a cold start).')
@minValue(1)
@maxValue(20)
param minimumInstances int

@description('Most instances the plan scales out to. Set it to minimumInstances to rule out scale-in, which gives a running execution only 60 minutes (infra/README.md, Hosting).')
@minValue(1)
@maxValue(100)
param maximumInstances int

@description('Full image reference, <registry login server>/<repository>:<tag>.')
param image string

@description('Resource id of the user-assigned managed identity.')
param identityId string

@description('Client id of the user-assigned managed identity.')
param identityClientId string

@description('Storage account name (the Functions host storage, AzureWebJobsStorage).')
param storageAccountName string

@description('Blob endpoint of the storage account, https://<account>.blob.core.windows.net/.')
param blobEndpoint string

@description('Queue endpoint of the storage account.')
param queueEndpoint string

@description('Table endpoint of the storage account.')
param tableEndpoint string

@description('Application Insights connection string (not a secret: ingestion needs an Entra ID token).')
param appInsightsConnectionString string

@description('Log Analytics workspace that receives the function app logs.')
param logAnalyticsWorkspaceId string

@description('Application (client) id of the Microsoft Entra app registration of the API.')
param authClientId string

@description('What App Service Authentication does with a request without a valid token.')
@allowed([
  'RedirectToLoginPage'
  'Return401'
])
param unauthenticatedAction string

@description('Paths App Service Authentication lets through without a token, e.g. /api/health for an outside probe.')
param authExcludedPaths array

@description('Endpoint of the Event Grid topic the events are published to (APPBACKUPS_EVENTGRID_TOPIC_ENDPOINT).')
param eventGridTopicEndpoint string

@description('URI of the Key Vault that keeps the webhook signing secrets (APPBACKUPS_KEY_VAULT_URL).')
param keyVaultUri string

@description('Object ids of the global admins (APPBACKUPS_GLOBAL_ADMINS).')
param globalAdmins array

@description('Overrides host.json functionTimeout (hh:mm:ss, or -1 for unbounded); empty keeps host.json.')
param functionTimeout string

@description('Extra app settings, e.g. database password settings as Key Vault references or schedule overrides; they cannot replace the settings this module fixes.')
param appSettings object

// App settings (siteConfig.appSettings below), merged by union() where a later group wins: first the
// defaults the `appSettings` parameter may override, then that parameter, then the settings this
// module fixes, which nothing can replace.

// Timer schedules (NCRONTAB, UTC) as in shared/config.py DEFAULT_SCHEDULES. The timers name them as
// %SETTING%, so the host cannot index its functions without them. Override through `appSettings`.
var scheduleSettings = {
  APPBACKUPS_NIGHTLY_SCHEDULE: '0 0 2 * * *'
  APPBACKUPS_WEEKLY_SCHEDULE: '0 0 2 * * 0'
  APPBACKUPS_MONTHLY_SCHEDULE: '0 0 2 * * 0'
  APPBACKUPS_PRUNE_SCHEDULE: '0 0 4 * * *'
  APPBACKUPS_DRILL_SCHEDULE: '0 0 5 * * 0'
  APPBACKUPS_CAPTURE_SCHEDULE: '0 * * * * *'
}

var platformSettings = {
  FUNCTIONS_EXTENSION_VERSION: '~4'
  FUNCTIONS_WORKER_RUNTIME: 'python'
  WEBSITES_ENABLE_APP_SERVICE_STORAGE: 'false'
  AZURE_CLIENT_ID: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}

// The Functions host's own storage (keys, timer schedules, locks): identity-based.
var hostStorageSettings = {
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
}

// The app's storage connection, shared/config.py STORAGE_CONNECTION, also used by the queue triggers.
var backupStorageSettings = {
  BackupStorage__blobServiceUri: blobEndpoint
  BackupStorage__queueServiceUri: queueEndpoint
  BackupStorage__tableServiceUri: tableEndpoint
  BackupStorage__credential: 'managedidentity'
  BackupStorage__clientId: identityClientId
}

// App Service Authentication signs in to Entra ID with the managed identity as a federated
// credential of the app registration instead of a client secret.
var authSettings = {
  OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID: identityClientId
}

// The app's own settings (shared/config.py Settings.from_environ). Development mode is never on in Azure.
var appbackupsSettings = {
  APPBACKUPS_DEVELOPMENT_MODE: 'false'
  APPBACKUPS_GLOBAL_ADMINS: join(globalAdmins, ',')
  APPBACKUPS_EVENTGRID_TOPIC_ENDPOINT: eventGridTopicEndpoint
  APPBACKUPS_KEY_VAULT_URL: keyVaultUri
}

var timeoutSettings = empty(functionTimeout) ? {} : {
  AzureFunctionsJobHost__functionTimeout: functionTimeout
}

var allSettings = union(scheduleSettings, appSettings, timeoutSettings, platformSettings, hostStorageSettings, backupStorageSettings, authSettings, appbackupsSettings)

resource plan 'Microsoft.Web/serverfarms@2023-12-01' = {
  // checkov:skip=CKV_AZURE_225: Zone redundancy needs at least three always-ready instances, tripling the cost of a service whose work is resumable (checkpointed operations, reaper); the data itself is zone- or geo-redundant in storage.
  name: planName
  location: location
  tags: tags
  kind: 'elastic'
  sku: {
    name: planSku
    tier: 'ElasticPremium'
  }
  properties: {
    reserved: true
    maximumElasticWorkerCount: maximumInstances
    zoneRedundant: false
  }
}

resource site 'Microsoft.Web/sites@2023-12-01' = {
  // checkov:skip=CKV_AZURE_17: Callers are authenticated by App Service Authentication (Microsoft Entra ID tokens) and function keys; client certificates would add a second PKI for the same purpose.
  // checkov:skip=CKV_AZURE_212: The plan keeps minimumInstances always-ready instances (1 by default); a second failover instance is a cost choice, and unfinished work is resumed by the reaper on whatever instance remains.
  // checkov:skip=CKV_AZURE_213: No App Service health check: /api/health also reports the environments databases, and an unreachable app database must not make the platform replace healthy instances in the middle of a restore; probe /api/health from outside instead (infra/README.md).
  // checkov:skip=CKV_AZURE_222: The API and the Backups page are reached over the internet, guarded by App Service Authentication and function keys; a private-only app needs a virtual network this template does not create (infra/README.md, Network isolation).
  name: functionAppName
  location: location
  // azd deploy finds the app it puts the image on by this tag (azure.yaml: services.api).
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux,container'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientAffinityEnabled: false
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      linuxFxVersion: 'DOCKER|${image}'
      // Always: the stock image azd provisions the app on first is only there until azd deploy replaces it
      // with the app's image from the registry, which needs these.
      acrUseManagedIdentityCreds: true
      acrUserManagedIdentityID: identityClientId
      minimumElasticInstanceCount: minimumInstances
      functionAppScaleLimit: maximumInstances
      ftpsState: 'Disabled'
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
      remoteDebuggingEnabled: false
      use32BitWorkerProcess: false
      cors: {
        allowedOrigins: []
      }
      appSettings: [for setting in items(allSettings): {
        name: setting.key
        value: setting.value
      }]
    }
  }
}

resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2023-12-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2023-12-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

resource siteAuth 'Microsoft.Web/sites/config@2023-12-01' = {
  // checkov:skip=CKV_AZURE_13: A check of the retired authsettings (V1) resource; this is authsettingsV2, enabled by platform.enabled, which CKV_AZURE_56 checks and passes.
  // checkov:skip=CKV_AZURE_63: checkov reads httpLoggingEnabled from every sites/config resource; this one is authsettingsV2. HTTP requests are logged by Application Insights and FunctionAppLogs go to Log Analytics (siteLogs).
  // checkov:skip=CKV_AZURE_65: Not applicable to authsettingsV2 (see CKV_AZURE_63); detailed errors and exceptions are in Application Insights.
  // checkov:skip=CKV_AZURE_66: Not applicable to authsettingsV2 (see CKV_AZURE_63); failed requests are traced by Application Insights.
  // checkov:skip=CKV_AZURE_80: The .NET Framework version does not apply: a Python app in a Linux container, and this resource is authsettingsV2.
  // checkov:skip=CKV_AZURE_88: Azure Files needs a storage account key and the account allows no shared keys; the code is in the container image and the host state in blobs reached with the managed identity, so the app has no content share.
  // checkov:skip=CKV_AZURE_222: Same as on the site: the API is public, behind App Service Authentication and function keys (infra/README.md, Network isolation).
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: unauthenticatedAction
      redirectToProvider: 'azureactivedirectory'
      excludedPaths: authExcludedPaths
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: authClientId
          clientSecretSettingName: 'OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID'
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            'api://${authClientId}'
            authClientId
          ]
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
    httpSettings: {
      requireHttps: true
      forwardProxy: {
        convention: 'NoProxy'
      }
    }
  }
}

resource siteLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: site
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        category: 'FunctionAppLogs'
        enabled: true
      }
    ]
  }
}

output name string = site.name
output id string = site.id
output url string = 'https://${site.properties.defaultHostName}'
output planName string = plan.name
