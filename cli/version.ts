/** The version of mq, from deno.json. */
import meta from "../deno.json" with { type: "json" };

/** mq's version. */
export const VERSION: string = meta.version;
