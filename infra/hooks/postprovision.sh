#!/bin/sh
# azd postprovision hook: finish the app registration once the function app exists — its sign-in redirect,
# and the app's managed identity as its federated credential (App Service Authentication signs in with it
# instead of a client secret). Safe to run again.
set -eu

client_id="${APPBACKUPS_AUTH_CLIENT_ID:?the preprovision hook sets APPBACKUPS_AUTH_CLIENT_ID}"
app="${AZURE_FUNCTION_APP_NAME:-}"
if [ -z "$app" ]; then
  echo "appbackups: no function app yet; nothing to finish"
  exit 0
fi
principal="${AZURE_IDENTITY_PRINCIPAL_ID:?main.bicep outputs AZURE_IDENTITY_PRINCIPAL_ID}"
tenant=$(az account show --query tenantId -o tsv)

az ad app update --id "$client_id" --web-redirect-uris "https://$app.azurewebsites.net/.auth/login/aad/callback"
existing=$(az ad app federated-credential list --id "$client_id" \
  --query "[?name=='appbackups-managed-identity'].name" -o tsv)
if [ -z "$existing" ]; then
  az ad app federated-credential create --id "$client_id" --parameters "{
    \"name\": \"appbackups-managed-identity\",
    \"issuer\": \"https://login.microsoftonline.com/$tenant/v2.0\",
    \"subject\": \"$principal\",
    \"audiences\": [\"api://AzureADTokenExchange\"]}"
fi
echo "appbackups: https://$app.azurewebsites.net/api/portal (sign in; you are a global admin: AZURE_PRINCIPAL_ID)"
