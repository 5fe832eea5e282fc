// Azure Container Registry for the appbackups image. The function app pulls with its managed
// identity (AcrPull, roles.bicep): no admin user, no anonymous pull, no registry passwords.

@description('Registry name: 5-50 letters and digits, globally unique.')
@minLength(5)
@maxLength(50)
param name string

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Registry SKU. Premium adds private endpoints, zone redundancy, quarantine and retention policies.')
@allowed([
  'Basic'
  'Standard'
  'Premium'
])
param skuName string

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  // checkov:skip=CKV_AZURE_139: The image is pushed from an operator machine or CI and pulled by App Service without a virtual network, so the registry keeps its public endpoint; pulls and pushes need Entra ID tokens (admin user and anonymous pull are off). Private endpoints need the Premium SKU and a network (infra/README.md, Network isolation).
  // checkov:skip=CKV_AZURE_163: Vulnerability scanning is Microsoft Defender for Containers, a subscription-level plan enabled outside this template (infra/README.md, Prerequisites).
  // checkov:skip=CKV_AZURE_166: Image quarantine needs the Premium SKU; images come only from this repository's Dockerfile through az acr build, by operators with push rights.
  // checkov:skip=CKV_AZURE_233: Zone redundancy needs the Premium SKU and a region with zones; a lost registry is rebuilt from the repository with az acr build, while backups live in the storage account.
  name: name
  location: location
  tags: tags
  sku: {
    name: skuName
  }
  properties: {
    adminUserEnabled: false
    publicNetworkAccess: 'Enabled'
    dataEndpointEnabled: false
  }
}

output name string = registry.name
output id string = registry.id
output loginServer string = registry.properties.loginServer
