import { createRouter, createWebHistory } from 'vue-router'
import HomeView from './views/HomeView.vue'
import ItemListView from './views/ItemListView.vue'
import ItemDetailView from './views/ItemDetailView.vue'
import NotFoundView from './views/NotFoundView.vue'

// History mode: URLs are real paths (/items/2), not #/items/2. A browser
// that opens or reloads /items/2 asks the server for that path, and
// portico's spa = true answers it with index.html, which then routes.
export const router = createRouter({
  history: createWebHistory(import.meta.env.BASE_URL),
  routes: [
    { path: '/', name: 'home', component: HomeView },
    { path: '/items', name: 'items', component: ItemListView },
    { path: '/items/:id', name: 'item', component: ItemDetailView, props: true },
    // Any other path: the client-side 404 (the server answered 200 with
    // index.html, since it cannot know the app's routes).
    { path: '/:pathMatch(.*)*', name: 'not-found', component: NotFoundView },
  ],
})
