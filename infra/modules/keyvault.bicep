// Key Vault for the secrets the app reads through Key Vault references in app settings: the
// environments' database passwords (see infra/README.md, Database access). RBAC authorization only
// (no access policies); soft delete and purge protection on.

@description('Key Vault name: 3-24 letters, digits and hyphens, globally unique.')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Log Analytics workspace that receives the audit log.')
param logAnalyticsWorkspaceId string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_189: Public network access stays enabled for the same reason as CKV_AZURE_109: no virtual network, so App Service resolves Key Vault references over the public endpoint.
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      // checkov:skip=CKV_AZURE_109: Key Vault references are resolved by App Service over the public endpoint because the function app has no virtual network; App Service is not a trusted service for references, so a deny-by-default firewall would break them. Access is Entra ID + RBAC only (infra/README.md, Network isolation).
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource auditLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: vault
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

output name string = vault.name
output id string = vault.id
output uri string = vault.properties.vaultUri
