// The data of the example: in a real app this would come from an API
// (a proxy route next to the static one in portico.toml).
export const items = [
  { id: 1, name: 'Lantern', description: 'A brass lantern that lights a porch.' },
  { id: 2, name: 'Column', description: 'A Doric column holding up a portico.' },
  { id: 3, name: 'Bench', description: 'An oak bench in the shade of the colonnade.' },
]

export function findItem(id) {
  return items.find((item) => String(item.id) === String(id))
}
