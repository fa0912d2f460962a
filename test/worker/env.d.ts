// Types of the `cloudflare:test` module that the Cloudflare vitest integration provides inside workerd.
/// <reference types="@cloudflare/vitest-plugin/types" />
