// The README's request bodies and the answers it reads, typed by what openapi-typescript makes of
// openapi.yaml. tests/test_typescript_types.py generates ./openapi.d.ts from openapi.yaml into a
// temporary directory, copies this file beside it and runs `tsc --noEmit --strict` on it: a body
// the README sends that the types refuse (an item the server defaults made required, a field or
// enum value renamed), or a field every answer carries that the types call optional, fails the
// check. Nothing here runs.
import type { paths } from "./openapi";

// The JSON body an operation takes (never, so nothing fits, when it takes none).
type JsonBody<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends {
  requestBody?: { content: { "application/json": infer Body } };
}
  ? Body
  : never;

// The JSON an operation answers with status S.
type JsonAnswer<P extends keyof paths, M extends keyof paths[P], S extends number> = paths[P][M] extends {
  responses: { [status in S]: { content: { "application/json": infer Answer } } };
}
  ? Answer
  : never;

// 1. Register and log in.
export const register: JsonBody<"/api/v1/auth/register", "post"> = {
  username: "ada",
  password: "correct-battery-horse-42",
};
export const login: JsonBody<"/api/v1/auth/login", "post"> = {
  username: "ada",
  password: "correct-battery-horse-42",
};
declare const pair: JsonAnswer<"/api/v1/auth/login", "post", 200>;
export const accessToken: string = pair.access_token;
export const refreshToken: string = pair.refresh_token;
export const expiresIn: number = pair.expires_in;

// 2. The survivor profile, with a location and an inventory naming only some items.
export const profile: JsonBody<"/api/v1/survivors", "post"> = {
  name: "Ada",
  age: 34,
  gender: "female",
  location: { latitude: -33.92, longitude: 18.42 },
  inventory: { water: 3, food: 2 },
};
declare const created: JsonAnswer<"/api/v1/survivors", "post", 201>;
export const adaId: string = created.id;
declare const read: JsonAnswer<"/api/v1/survivors/{survivor_id}", "get", 200>;
// A profile made from one read back: the answer's enum and location are the body's own types.
export const likeAda: JsonBody<"/api/v1/survivors", "post"> = {
  name: read.name,
  age: read.age,
  gender: read.gender,
  location: read.location,
};
export const infected: boolean = read.infected;

// join NAME INVENTORY: the other survivors' profiles, one with an empty inventory.
export const bob: JsonBody<"/api/v1/survivors", "post"> = {
  name: "bob",
  age: 30,
  gender: "unspecified",
  location: { latitude: 0, longitude: 0 },
  inventory: { ammunition: 10 },
};
export const cleo: JsonBody<"/api/v1/survivors", "post"> = {
  name: "cleo",
  age: 30,
  gender: "unspecified",
  location: { latitude: 0, longitude: 0 },
  inventory: {},
};

// 3. The trade, Bob's acceptance and the inventories after it.
declare const bobCreated: JsonAnswer<"/api/v1/survivors", "post", 201>;
export const trade: JsonBody<"/api/v1/trades", "post"> = {
  partner_id: bobCreated.id,
  offer: { water: 1 },
  request: { ammunition: 4 },
};
declare const accepted: JsonAnswer<"/api/v1/trades/{trade_id}/accept", "post", 200>;
export const tradeStatus: "pending" | "completed" | "rejected" | "cancelled" = accepted.status;
declare const inventory: JsonAnswer<"/api/v1/survivors/{survivor_id}/inventory", "get", 200>;
export const items: [number, number, number, number, number] = [
  inventory.water,
  inventory.food,
  inventory.medication,
  inventory.ammunition,
  inventory.points,
];

// 5. The infection report.
declare const report: JsonAnswer<"/api/v1/reports/infection", "get", 200>;
export const shares: [number, number, number, number, number] = [
  report.total,
  report.infected,
  report.non_infected,
  report.infected_percentage,
  report.non_infected_percentage,
];

// 6. Sessions, the password change, and logging in with the new password.
declare const sessions: JsonAnswer<"/api/v1/auth/sessions", "get", 200>;
export const devices: [string, boolean, string | null][] = sessions.items.map((s) => [s.id, s.current, s.user_agent]);
export const total: number = sessions.total;
export const change: JsonBody<"/api/v1/auth/password", "post"> = {
  current_password: "correct-battery-horse-42",
  new_password: "another-lantern-river-77",
};
export const relogin: JsonBody<"/api/v1/auth/login", "post"> = {
  username: "ada",
  password: "another-lantern-river-77",
};
declare const refreshed: JsonAnswer<"/api/v1/auth/refresh", "post", 200>;
export const tokenType: "Bearer" = refreshed.token_type;
