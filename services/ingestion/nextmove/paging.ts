import { sql, type RawBuilder } from 'kysely';
import { Type, type TSchema } from 'typebox';
import { ownValue } from '../../../shared/runtime/own-key.js';
import { violation } from './sbd.js';

/**
 * Spring Data paging as next-move answers it: `?page=` (from 0), `?size=` (default 10) and
 * `?sort=property(,asc|desc)`, repeatable; the answer is a Page (content, pageable, totals).
 */
export const PagingQuery = {
  page: Type.Optional(Type.Integer({ minimum: 0, maximum: 100_000, default: 0, description: 'Page to retrieve, from 0' })),
  size: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 10, description: 'Page size (default 10)' })),
  sort: Type.Optional(
    Type.Union([Type.String({ maxLength: 100 }), Type.Array(Type.String({ maxLength: 100 }), { maxItems: 5 })], {
      description: 'property(,asc|desc); repeat for several',
    }),
  ),
};

export interface PagingParams {
  page?: number;
  size?: number;
  sort?: string | string[];
}

const SortSchema = Type.Object({ sorted: Type.Boolean(), unsorted: Type.Boolean(), empty: Type.Boolean() });

export const PageOf = <T extends TSchema>(item: T, description: string) =>
  Type.Object(
    {
      content: Type.Array(item),
      pageable: Type.Object({
        sort: SortSchema,
        pageNumber: Type.Integer(),
        pageSize: Type.Integer(),
        offset: Type.Integer(),
        paged: Type.Boolean(),
        unpaged: Type.Boolean(),
      }),
      totalElements: Type.Integer(),
      last: Type.Boolean(),
      totalPages: Type.Integer(),
      sort: SortSchema,
      numberOfElements: Type.Integer(),
      first: Type.Boolean(),
      size: Type.Integer(),
      number: Type.Integer(),
      empty: Type.Boolean(),
    },
    { description },
  );

/** ORDER BY from `sort`, only over the allowed properties (property -> SQL column); `id` breaks ties. */
export function orderBy(sortParam: string | string[] | undefined, allowed: Record<string, string>, tieBreak: string): { sql: RawBuilder<unknown>; sorted: boolean } {
  const sorts = sortParam === undefined ? [] : Array.isArray(sortParam) ? sortParam : [sortParam];
  const terms: string[] = [];
  for (const s of sorts) {
    const parts = s.split(',').map((p) => p.trim()).filter(Boolean);
    const last = parts.at(-1)?.toLowerCase();
    const dir = last === 'asc' || last === 'desc' ? (parts.pop(), last) : 'asc';
    for (const p of parts) {
      // Own properties only: `__proto__` or `constructor` must not find Object.prototype's (into raw SQL).
      const column = ownValue(allowed, p);
      if (column === undefined) throw violation('sort', `Cannot sort by ${p.slice(0, 50)}; use one of ${Object.keys(allowed).join(', ')}`, s);
      terms.push(`${column} ${dir}`);
    }
  }
  terms.push(`${tieBreak} ${terms.length > 0 && terms[0]!.endsWith('desc') ? 'desc' : 'asc'}`);
  return { sql: sql.raw(terms.join(', ')), sorted: true };
}

export function pageOf<T>(content: T[], total: number, p: PagingParams, sorted = true) {
  const number = p.page ?? 0;
  const size = p.size ?? 10;
  const totalPages = Math.ceil(total / size);
  const sort = { sorted, unsorted: !sorted, empty: !sorted };
  return {
    content,
    pageable: { sort, pageNumber: number, pageSize: size, offset: number * size, paged: true, unpaged: false },
    totalElements: total,
    last: number >= totalPages - 1,
    totalPages,
    sort,
    numberOfElements: content.length,
    first: number === 0,
    size,
    number,
    empty: content.length === 0,
  };
}

export const limitOffset = (p: PagingParams) => sql`limit ${p.size ?? 10} offset ${(p.page ?? 0) * (p.size ?? 10)}`;
