#!/bin/sh
# azd preprovision hook: the Microsoft Entra app registration of the API, which App Service Authentication
# accepts tokens for. Created once per azd environment; an existing one is named by APPBACKUPS_AUTH_CLIENT_ID
# (azd env set APPBACKUPS_AUTH_CLIENT_ID <client id> to reuse one).
set -eu

if [ -n "${APPBACKUPS_AUTH_CLIENT_ID:-}" ]; then
  echo "appbackups: app registration ${APPBACKUPS_AUTH_CLIENT_ID}"
  exit 0
fi

name="appbackups-${AZURE_ENV_NAME:?azd sets AZURE_ENV_NAME}"
client_id=$(az ad app create --display-name "$name" --sign-in-audience AzureADMyOrg \
  --enable-id-token-issuance true --query appId -o tsv)
az ad app update --id "$client_id" --identifier-uris "api://$client_id"
az ad sp create --id "$client_id" --output none
azd env set APPBACKUPS_AUTH_CLIENT_ID "$client_id"
echo "appbackups: created the app registration $name ($client_id)"
