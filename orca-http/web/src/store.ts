import { configureStore } from '@reduxjs/toolkit';
import { api } from './api';

export const store = configureStore({
  reducer: { [api.reducerPath]: api.reducer },
  middleware: (m) => m().concat(api.middleware),
});

export type RootState = ReturnType<typeof store.getState>;
