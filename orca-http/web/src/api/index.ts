// The API as RTK Query endpoints. Types come from `schema.ts`, generated from the server's
// OpenAPI document (`npm run gen:api`), so the console and the API cannot drift.
import { createApi, fetchBaseQuery, type BaseQueryFn } from '@reduxjs/toolkit/query/react';
import type { FetchArgs, FetchBaseQueryError } from '@reduxjs/toolkit/query';
import type { components, operations } from './schema';
import { accessToken, refresh } from '../auth/session';

export type Schemas = components['schemas'];
export type System = Schemas['System'];
export type Job = Schemas['Job'];
export type Execution = Schemas['Execution'];
export type AuditRecord = Schemas['AuditRecord'];
export type User = Schemas['User'];
export type Me = Schemas['Me'];
export type TokenInfo = Schemas['TokenInfo'];
export type HostKey = Schemas['HostKey'];
export type Scope = Schemas['Scope'];
export type Role = Schemas['Role'];
type Q<Op extends keyof operations> = NonNullable<operations[Op]['parameters']['query']>;
/** `tag` may be left out (no tag filter). */
type SystemQuery = Omit<Q<'list_systems'>, 'tag'> & { tag?: string[] };

const raw = fetchBaseQuery({
  baseUrl: '/api/v1',
  prepareHeaders: (h) => {
    const t = accessToken();
    if (t) h.set('authorization', `Bearer ${t}`);
    return h;
  },
});

/** The base query: the access token from memory; one silent refresh on a 401. */
const baseQuery: BaseQueryFn<string | FetchArgs, unknown, FetchBaseQueryError> = async (
  args,
  api,
  extra,
) => {
  if (!accessToken()) await refresh();
  let result = await raw(args, api, extra);
  if (result.error?.status === 401 && (await refresh())) {
    result = await raw(args, api, extra);
  }
  return result;
};

/** The message of an RTK Query error. */
export function messageOf(error: unknown): string {
  if (!error || typeof error !== 'object') return '';
  const e = error as { status?: unknown; data?: { message?: string }; error?: string };
  if (e.data && typeof e.data === 'object' && e.data.message) return e.data.message;
  if (e.error) return e.error;
  return `request failed (${String(e.status)})`;
}

export const api = createApi({
  reducerPath: 'api',
  baseQuery,
  tagTypes: ['System', 'Job', 'User', 'Token', 'Grants', 'HostKey'],
  endpoints: (b) => ({
    whoami: b.query<Me, void>({ query: () => '/auth/me' }),
    listSystems: b.query<Schemas['SystemList'], SystemQuery>({
      query: (params) => ({ url: '/systems', params }),
      providesTags: ['System'],
    }),
    getSystem: b.query<System, string>({
      query: (name) => `/systems/${encodeURIComponent(name)}`,
      providesTags: ['System'],
    }),
    createSystem: b.mutation<System, Schemas['CreateSystemRequest']>({
      query: (body) => ({ url: '/systems', method: 'POST', body }),
      invalidatesTags: ['System'],
    }),
    updateSystem: b.mutation<System, { name: string; body: Schemas['UpdateSystemRequest'] }>({
      query: ({ name, body }) => ({
        url: `/systems/${encodeURIComponent(name)}`,
        method: 'PATCH',
        body,
      }),
      invalidatesTags: ['System'],
    }),
    deleteSystem: b.mutation<void, string>({
      query: (name) => ({ url: `/systems/${encodeURIComponent(name)}`, method: 'DELETE' }),
      invalidatesTags: ['System'],
    }),
    probeSystem: b.mutation<Schemas['Health'], string>({
      query: (name) => ({ url: `/systems/${encodeURIComponent(name)}/probe`, method: 'POST' }),
      invalidatesTags: ['System', 'HostKey'],
    }),
    hostKeys: b.query<Schemas['HostKeyList'], string>({
      query: (name) => `/systems/${encodeURIComponent(name)}/host-keys`,
      providesTags: ['HostKey'],
    }),
    approveHostKey: b.mutation<HostKey, { name: string; body: Schemas['HostKeyInput'] }>({
      query: ({ name, body }) => ({
        url: `/systems/${encodeURIComponent(name)}/host-keys`,
        method: 'POST',
        body,
      }),
      invalidatesTags: ['HostKey'],
    }),
    listJobs: b.query<Schemas['JobList'], Q<'list_jobs'>>({
      query: (params) => ({ url: '/jobs', params }),
      providesTags: ['Job'],
    }),
    getJob: b.query<Job, string>({ query: (id) => `/jobs/${id}`, providesTags: ['Job'] }),
    jobExecutions: b.query<Schemas['ExecutionList'], { id: string; offset?: number }>({
      query: ({ id, offset }) => ({
        url: `/jobs/${id}/executions`,
        params: { offset, limit: 1000 },
      }),
      providesTags: ['Job'],
    }),
    submitJob: b.mutation<Schemas['SubmittedJob'], Schemas['JobRequest']>({
      query: (body) => ({ url: '/jobs', method: 'POST', body }),
      invalidatesTags: ['Job'],
    }),
    cancelJob: b.mutation<Schemas['CancelResult'], string>({
      query: (id) => ({ url: `/jobs/${id}/cancel`, method: 'POST' }),
      invalidatesTags: ['Job'],
    }),
    retryJob: b.mutation<Schemas['SubmittedJob'], string>({
      query: (id) => ({ url: `/jobs/${id}/retry`, method: 'POST' }),
      invalidatesTags: ['Job'],
    }),
    getExecution: b.query<Execution, string>({
      query: (id) => `/executions/${id}`,
      providesTags: ['Job'],
    }),
    cancelExecution: b.mutation<unknown, string>({
      query: (id) => ({ url: `/executions/${id}/cancel`, method: 'POST' }),
      invalidatesTags: ['Job'],
    }),
    listAudit: b.query<Schemas['AuditList'], Q<'list_audit'>>({
      query: (params) => ({ url: '/audit', params }),
    }),
    listUsers: b.query<Schemas['UserList'], void>({
      query: () => ({ url: '/users', params: { limit: 1000 } }),
      providesTags: ['User'],
    }),
    createUser: b.mutation<User, Schemas['CreateUserRequest']>({
      query: (body) => ({ url: '/users', method: 'POST', body }),
      invalidatesTags: ['User'],
    }),
    updateUser: b.mutation<User, { id: string; body: Schemas['UpdateUserRequest'] }>({
      query: ({ id, body }) => ({ url: `/users/${id}`, method: 'PATCH', body }),
      invalidatesTags: ['User'],
    }),
    resetPassword: b.mutation<void, { id: string; password: string }>({
      query: ({ id, password }) => ({
        url: `/users/${id}/password`,
        method: 'POST',
        body: { password },
      }),
    }),
    getGrants: b.query<Schemas['Grants'], string>({
      query: (id) => `/users/${id}/grants`,
      providesTags: ['Grants'],
    }),
    setGrants: b.mutation<Schemas['Grants'], { id: string; body: Schemas['Grants'] }>({
      query: ({ id, body }) => ({ url: `/users/${id}/grants`, method: 'PUT', body }),
      invalidatesTags: ['Grants'],
    }),
    listTokens: b.query<Schemas['TokenList'], void>({
      query: () => '/tokens',
      providesTags: ['Token'],
    }),
    createToken: b.mutation<Schemas['ApiTokenCreated'], Schemas['CreateTokenRequest']>({
      query: (body) => ({ url: '/tokens', method: 'POST', body }),
      invalidatesTags: ['Token'],
    }),
    revokeToken: b.mutation<void, string>({
      query: (id) => ({ url: `/tokens/${id}`, method: 'DELETE' }),
      invalidatesTags: ['Token'],
    }),
    changePassword: b.mutation<void, Schemas['ChangePasswordRequest']>({
      query: (body) => ({ url: '/auth/password', method: 'POST', body }),
    }),
  }),
});

export const {
  useWhoamiQuery,
  useListSystemsQuery,
  useGetSystemQuery,
  useCreateSystemMutation,
  useUpdateSystemMutation,
  useDeleteSystemMutation,
  useProbeSystemMutation,
  useHostKeysQuery,
  useApproveHostKeyMutation,
  useListJobsQuery,
  useGetJobQuery,
  useJobExecutionsQuery,
  useSubmitJobMutation,
  useCancelJobMutation,
  useRetryJobMutation,
  useGetExecutionQuery,
  useCancelExecutionMutation,
  useListAuditQuery,
  useListUsersQuery,
  useCreateUserMutation,
  useUpdateUserMutation,
  useResetPasswordMutation,
  useGetGrantsQuery,
  useSetGrantsMutation,
  useListTokensQuery,
  useCreateTokenMutation,
  useRevokeTokenMutation,
  useChangePasswordMutation,
} = api;
