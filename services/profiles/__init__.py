"""profiles: members, their profiles and what others see of them, search by name, recommendations."""
