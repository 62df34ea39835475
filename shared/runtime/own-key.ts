/**
 * A value looked up in a plain object map by a key that came from outside (a query, a body, a
 * header): own properties only, so `__proto__`, `constructor` or `toString` never find what
 * Object.prototype has.
 */
export function ownValue<V>(map: Readonly<Record<string, V>>, key: string): V | undefined {
  return Object.hasOwn(map, key) ? map[key] : undefined;
}
