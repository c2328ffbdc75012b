// The scenarios of test/sdk-scenarios.ts with `@directus/sdk` 26, npm's latest, which needs Node 22: logins take
// `{ email, password }` (from 20 on), and the rest of the wire is 18's.
import { authentication, createDirectus, realtime, staticToken } from '@directus/sdk-26'
import { sdkScenarios, type SdkUnderTest } from '../sdk-scenarios.js'

/** SDK 26's `login`, as the client the scenarios build has it. */
type Login26 = (payload: { email: string, password: string }) => ReturnType<SdkUnderTest['login']>

sdkScenarios({
  // Typed as 18's: the scenarios use what the two have in common.
  ...{ createDirectus, authentication, realtime, staticToken } as unknown as Omit<SdkUnderTest, 'login'>,
  login: (client, email, password) => (client as unknown as { login: Login26 }).login({ email, password })
})
